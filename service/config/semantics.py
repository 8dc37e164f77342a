"""Validation of the contract §4a keys of a DestinationConfig. Pure.

The models check types (a `write` that is not `always` or `if_empty`, a values
map that is not text to text); this checks what they cannot: a values map covers
every TrailSpark value of its field and nothing else, reasoning and evaluated_at
take no map (free text and a date-time have no fixed values), an option names a
field the target maps, and `on_duplicate` is on a Salesforce target. Every
refusal is `invalid_field_options`.
"""

from __future__ import annotations

from service.errors import ConfigRejected
from service.models import DestinationConfig, Propensity, Score, ValueMap

REASON = "invalid_field_options"
WORDS: dict[str, tuple[str, ...]] = {
    "score": tuple(s.value for s in Score),
    "propensity": tuple(p.value for p in Propensity),
}


def _quoted(words: list[str]) -> str:
    return ", ".join(repr(w) for w in words)


def map_problem(key: str, values: ValueMap) -> str | None:
    """Why a values map for `key` (score, propensity, ...) cannot be used, or None."""
    words = WORDS.get(key)
    if words is None:
        return f"{key} takes no values map (it has no fixed values)"
    missing = [w for w in words if w not in values]
    if missing:
        return f"the {key} values map does not cover {_quoted(missing)}"
    extra = sorted(set(values) - set(words))
    if extra:
        return f"{_quoted(extra)} is not a {key} value (one of {_quoted(list(words))})"
    return None


def check(config: DestinationConfig) -> None:
    """Raise ConfigRejected(`invalid_field_options`) for the first §4a problem."""
    for i, target in enumerate(config.targets):
        where = f"targets[{i}]"
        for key, option in target.field_options.items():
            if key not in target.fields:
                raise ConfigRejected(
                    REASON, f"{where}.field_options.{key}: {key} is not in the target's fields"
                )
            problem = map_problem(key, option.values) if option.values is not None else None
            if problem is not None:
                raise ConfigRejected(REASON, f"{where}.field_options.{key}.values: {problem}")
        if target.on_duplicate is not None and config.destination != "salesforce":
            raise ConfigRejected(
                REASON,
                f"{where}.on_duplicate: only Salesforce targets have duplicate rules",
            )
    prop = config.propensity
    if prop is not None and prop.values is not None:
        problem = map_problem("propensity", prop.values)
        if problem is not None:
            raise ConfigRejected(REASON, f"propensity.values: {problem}")
