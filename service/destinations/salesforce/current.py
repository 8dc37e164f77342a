"""What `write: if_empty` (contract §4a) needs from Salesforce: the current values of
the fields a target (or the propensity) writes only while they are empty.

A lookup by field already runs a SOQL query: it selects those fields too, at no
extra call. A record named by id before any lookup (crm_ids, the record cache, a
converted Lead's Contact) is read with `SELECT Id, <fields> FROM Obj WHERE Id IN
(...)`: the one extra read if_empty costs, counted in `if_empty_reads_total`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from service.destinations.mapping import if_empty_fields
from service.destinations.salesforce.client import is_batch_error
from service.destinations.salesforce.pages import field_value
from service.destinations.salesforce.plan import View, known_id, pairs
from service.destinations.salesforce.soql import in_queries
from service.errors import DeliveryError
from service.models import DestinationConfig, EvaluationCompleted, WriteMode

# plan.Current, as filled here: (object, 15-character id) -> fields read, or the read's error.
Current = dict[tuple[str, str], dict[str, Any] | DeliveryError]
_ID = re.compile(r"[A-Za-z0-9]{15}([A-Za-z0-9]{3})?")


def guarded(config: DestinationConfig) -> dict[str, frozenset[str]]:
    """Object -> the fields written there only while empty (targets and propensity)."""
    out: dict[str, frozenset[str]] = {}
    for target in config.targets:
        fields = if_empty_fields(target)
        if fields:
            out[target.object] = out.get(target.object, frozenset()) | fields
    prop = config.propensity
    if prop is not None and prop.enabled and prop.write is WriteMode.IF_EMPTY:
        out[prop.object] = out.get(prop.object, frozenset()) | {prop.field}
    return out


def known_reads(
    config: DestinationConfig,
    events: Sequence[EvaluationCompleted],
    views: Sequence[View | None],
) -> dict[str, list[str]]:
    """Object -> the ids named before any lookup whose guarded fields must be read. An id
    that is not one (crm_ids hold anything) is left to its write, which refuses it."""
    wanted = guarded(config)
    out: dict[str, dict[str, None]] = {}
    for event, view in zip(events, views, strict=True):
        for obj, _ in pairs(config, event):
            if obj not in wanted or (view is not None and not view.wants(obj)):
                continue
            rid = known_id(event, view, obj)
            if rid and _ID.fullmatch(rid):
                out.setdefault(obj, {})[rid] = None
    return {obj: list(ids) for obj, ids in out.items()}


def remember(current: Current, obj: str, record: dict[str, Any], fields: frozenset[str]) -> None:
    """A queried record's guarded fields (a field it lacks is `bad_response`)."""
    current[obj, record["Id"][:15]] = {f: field_value(record, f) for f in fields}


def failed(current: Current, obj: str, ids: Sequence[str], error: DeliveryError) -> None:
    """A read that was refused: the writes that needed it fail with its error."""
    for rid in ids:
        current[obj, rid[:15]] = error


def id_queries(
    wanted: dict[str, list[str]], guarded: dict[str, frozenset[str]], budget: int
) -> list[tuple[str, list[str], str]]:
    """(object, ids, SOQL) of the reads by id: `SELECT Id, <fields> ... WHERE Id IN (...)`."""
    return [
        (obj, ids, soql)
        for obj, ids in wanted.items()
        for soql in in_queries(obj, "Id", ids, budget=budget, also=sorted(guarded[obj]))
    ]


def read_answers(
    current: Current,
    queries: Sequence[tuple[str, list[str], str]],
    answers: Sequence[list[dict[str, Any]] | BaseException],
    guarded: dict[str, frozenset[str]],
) -> None:
    """Fold the reads into `current`. Nothing is written yet: a transient or org-wide
    failure raises; a refused read (an id Salesforce will not take) fails its writes."""
    for (obj, ids, _), answer in zip(queries, answers, strict=True):
        if (
            isinstance(answer, DeliveryError)
            and not answer.retryable
            and not is_batch_error(answer)
        ):
            failed(current, obj, ids, answer)
        elif isinstance(answer, BaseException):
            raise answer
        else:
            for record in answer:  # every record has a string Id (pages.read_page)
                remember(current, obj, record, guarded[obj])
