"""Configs held compactly: one copy of each part that many orgs' configs share.

10,000 orgs x 3 destinations are 30,000 configs, and most of each one is the
same as in the next org's (targets, field names, who saved it): validated one by
one, a config was 3.7 KB, 29 objects. The store keeps a config whose equal parts
(targets, propensity, updated_by, the fields-set of each model) are the ones
already held, and its short repeated strings interned: about 1 KB (issue 23).

The models are frozen, so a part shared between configs is never changed in
place (pydantic's `model_copy` copies the fields-set before updating it).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel

from service.models import DestinationConfig, Integration

M = TypeVar("M", bound=BaseModel)
SWEEP_AT = 1024  # shared parts held before those no config uses any more are dropped


class Compactor:
    def __init__(self, held: Callable[[], Iterable[DestinationConfig]]) -> None:
        self._held = held  # the configs in force: what a sweep keeps the parts of
        self._parts: dict[object, Any] = {}
        self._sweep_at = SWEEP_AT

    def compact(self, config: DestinationConfig) -> DestinationConfig:
        """An equal config, built from the parts already held where they are equal."""
        values = dict(config.__dict__)
        values["destination"] = sys.intern(config.destination)
        values["integration"] = self._integration(config.integration)
        values["updated_by"] = self._shared(config.updated_by)
        if config.propensity is not None:
            values["propensity"] = self._shared(config.propensity)
        if config.targets:
            dumped = [t.model_dump(mode="json") for t in config.targets]
            values["targets"] = self._part(("targets", orjson.dumps(dumped)), config.targets)
        return self._construct(config, values)

    def _integration(self, integration: Integration) -> Integration:
        values = {k: sys.intern(v) if k != "credentials_ref" else v for k, v in integration}
        return self._construct(integration, values)

    def _construct(self, model: M, values: dict[str, Any]) -> M:
        fields_set = model.__pydantic_fields_set__
        shared = self._part(("fields", type(model), frozenset(fields_set)), set(fields_set))
        return type(model).model_construct(shared, **values)

    def _shared(self, model: M) -> M:
        return self._part((type(model), model.model_dump_json()), model)  # type: ignore[no-any-return]

    def _part(self, key: object, value: Any) -> Any:
        held = self._parts.get(key)
        if held is not None:
            return held
        if len(self._parts) >= self._sweep_at:
            self._sweep()
        self._parts[key] = value
        return value

    def _sweep(self) -> None:
        """Drop the parts no config in force uses (configs replaced or deleted)."""
        used = {
            id(part)
            for c in self._held()
            for part in (
                c.targets,
                c.propensity,
                c.updated_by,
                c.__pydantic_fields_set__,
                c.integration.__pydantic_fields_set__,
            )
        }
        self._parts = {k: v for k, v in self._parts.items() if id(v) in used}
        self._sweep_at = max(SWEEP_AT, 2 * len(self._parts))

    def __len__(self) -> int:
        return len(self._parts)
