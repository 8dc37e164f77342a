"""Hostile input (issue 13): hypothesis fuzzing of event and config parsing (no
exception escapes; everything is a DLQ code or a counted rejection), Unicode edges
and newlines kept inside one log line in both formats, and HubSpot search values
with quotes and operators kept literal. Example counts are bounded so `make test`
stays fast."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit.factories import make_config, make_event
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.testing import batch, destination, hubspot_config
from service.config.store import ConfigStore
from service.destinations.hubspot import HubSpotDestination
from service.destinations.hubspot.lookup import search_body
from service.errors import InvalidEvent
from service.logs import JsonFormatter, TextFormatter
from service.metrics import Metrics
from service.models import EvaluationCompleted
from service.pipeline.decode import decode_event
from service.redact import redact

FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
SNAKE = re.compile(r"[a-z]+(_[a-z0-9]+)*")
# Every character class that has hurt log pipelines: controls, NUL, bidi overrides,
# line/paragraph separators, emoji, lone surrogates.
NASTY = st.sampled_from(
    ["\x00", "\n", "\r", "\t", "\x1b[31m", "\x85", "\u2028", "\u2029", "\u202e", "\u2066",
     "\ud800", "\udfff", "😀", "👩‍💻", "\ufeff", "'", '"', "\\", "*", "%", " OR ", "}"]
)  # fmt: skip
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
HOSTILE_TEXT = st.lists(st.one_of(NASTY, ANY_TEXT), max_size=6).map("".join)
JSON_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), HOSTILE_TEXT
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(HOSTILE_TEXT, inner, max_size=4)
    ),
    max_leaves=12,
)


def dumps(value: Any) -> bytes:
    """JSON text; lone surrogates written as `\\udXXX` escapes, as a hostile producer could."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS) if _utf8(value) else _escaped(value)


def _utf8(value: Any) -> bool:
    try:
        orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return False
    return True


def _escaped(value: Any) -> bytes:
    import json

    return json.dumps(value, ensure_ascii=True).encode()


@st.composite
def mutated_events(draw: st.DrawFn) -> bytes:
    """A valid event with one field (at any depth) replaced, removed or added."""
    event: dict[str, Any] = make_event()
    path = draw(st.sampled_from([(), ("lead",), ("evaluation",), ("lead", "crm_ids")]))
    target = event
    for part in path:
        target = target[part]
    key = draw(st.one_of(st.sampled_from(sorted(target) or ["x"]), HOSTILE_TEXT))
    action = draw(st.sampled_from(["replace", "delete"]))
    if action == "delete":
        target.pop(key, None)
    else:
        target[key] = draw(JSON_VALUE)
    return dumps(event)


EVENT_BYTES = st.one_of(
    st.binary(max_size=300),
    JSON_VALUE.map(dumps),
    mutated_events(),
    st.builds(lambda n: b"[" * n + b"]" * n, st.integers(1000, 3000)),  # nesting depth
)


@FUZZ
@given(EVENT_BYTES)
def test_event_parsing_never_raises_anything_but_a_dlq_code(value: bytes) -> None:
    try:
        event = decode_event(value, max_bytes=4096)
    except InvalidEvent as exc:
        assert SNAKE.fullmatch(exc.code), exc.code
        assert exc.stage in ("deserialize", "validate")
        assert exc.message and "\n" not in exc.code
        return
    assert isinstance(event, EvaluationCompleted) and event.org_id


@st.composite
def config_records(draw: st.DrawFn) -> tuple[bytes | None, bytes]:
    config: dict[str, Any] = make_config(draw(st.sampled_from(["salesforce", "hubspot"])))
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from([(), ("integration",), ("updated_by",)]))
        target = config
        for part in where:
            target = target[part] if isinstance(target.get(part), dict) else {}
        target[draw(st.one_of(st.sampled_from(sorted(target) or ["x"]), HOSTILE_TEXT))] = draw(
            JSON_VALUE
        )
    value = draw(st.one_of(st.just(dumps(config)), st.binary(max_size=200), JSON_VALUE.map(dumps)))
    key = draw(st.one_of(st.none(), st.just(b"org_1:salesforce"), st.binary(max_size=30)))
    return key, value


@FUZZ
@given(st.lists(config_records(), min_size=1, max_size=5))
def test_config_parsing_never_raises_and_every_record_is_accounted(
    records: list[tuple[bytes | None, bytes]],
) -> None:
    metrics = Metrics()
    store = ConfigStore(metrics)

    def total(name: str) -> float:
        return sum(
            s.value
            for m in metrics.registry.collect()
            for s in m.samples
            if s.name == f"trailspark_destinations_{name}_total"
        )

    for key, value in records:
        rejected, ignored = total("configs_rejected"), total("configs_ignored")
        held = dict(store._by_key)
        store.apply_record(key, value)  # never raises
        accepted = dict(store._by_key) != held
        outcomes = (total("configs_rejected") - rejected, total("configs_ignored") - ignored)
        assert sum(outcomes) + accepted == 1, (key, value)  # exactly one, always counted


def _format(formatter: logging.Formatter, text: str) -> str:
    record = logging.LogRecord("hostile", logging.WARNING, __file__, 1, "value %s", (text,), None)
    try:
        raise ValueError(text)
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    return formatter.format(record)


@settings(max_examples=200, deadline=None, database=None)
@given(HOSTILE_TEXT)
def test_hostile_text_stays_inside_one_log_line(text: str) -> None:
    json_line = _format(JsonFormatter(), text)
    text_line = _format(TextFormatter(), text)
    for line in (json_line, text_line):
        assert len(line.splitlines()) == 1, line  # also \x85, \u2028, \x1c-\x1e
        assert not re.search("[\u202a-\u202e\u2066-\u2069\ud800-\udfff]", line)
    entry = orjson.loads(json_line)
    assert entry["level"] == "warning" and "ValueError" in entry["exc"]
    if not re.search("[\ud800-\udfff]", text) and redact(text) == text:
        assert entry["msg"] == f"value {text}"  # JSON keeps the exact text


def test_the_named_unicode_edges_are_escaped_in_the_text_format() -> None:
    line = _format(TextFormatter(), "a\nb\x00c\u202ed\ud800e😀f")
    assert line.splitlines() == [line]
    assert "a\\nb\\x00c\\u202ed\\ud800e😀f" in line


# --- HubSpot search values stay literal --------------------------------------------

TRICKS = [
    "*",
    "victim.example*",
    '" OR domain:*',
    'victim.example" OR "other.example',
    "' OR 1=1 --",
    "%",
    "(domain:victim.example)",
    "victim.example OR other.example",
    "\\*",
]


@given(st.lists(st.one_of(st.sampled_from(TRICKS), HOSTILE_TEXT), min_size=1, max_size=5))
@settings(max_examples=50, deadline=None, database=None)
def test_search_values_are_sent_as_data(values: list[str]) -> None:
    body = search_body("domain", values, 100, None)
    (group,) = body["filterGroups"]
    (flt,) = group["filters"]
    assert (flt["propertyName"], flt["operator"], flt["values"]) == ("domain", "IN", values)


async def test_operator_like_domains_match_nothing_but_themselves(hs: HubSpotSandbox) -> None:
    victim = hs.seed("companies", name="Victim", domain="victim.example")
    hs.seed("companies", name="Other", domain="other.example")
    literal = hs.seed("companies", name="Literal", domain='" OR domain:*')
    companies = {
        "object": "companies",
        "match": {"crm_field": "domain", "event_field": "lead.domain"},
        "fields": {"score": "ts_score"},
        "create_if_missing": False,
    }
    dest: HubSpotDestination = destination(hs)
    events = [make_event(domain=trick, score="cold") for trick in TRICKS]
    try:
        outcomes = await dest.write(
            batch(hs, hubspot_config(targets=[companies], propensity=False), events)
        )
    finally:
        await dest.close()
    by_domain = {t: o for t, o in zip(TRICKS, outcomes, strict=True)}
    assert by_domain['" OR domain:*'].state == "delivered"
    assert [r.id for r in by_domain['" OR domain:*'].records] == [literal]
    for trick, outcome in by_domain.items():
        if trick != '" OR domain:*':
            assert (outcome.state, outcome.reason) == ("skipped", "record_not_found"), trick
    assert "ts_score" not in hs.store.records["companies"][victim].properties
    assert len(hs.records("companies")) == 3


# --- end to end: every hostile record ends in the DLQ, a status or a counted rejection ---

INVALID_EVENTS = [
    b"\x00\xff\xfe",  # not UTF-8
    b'{"schema_version": 1, "org_id": "org_1", "lead": {"lead_id": "\\ud800"}}',  # lone surrogate
    b"[" * 5000 + b"]" * 5000,  # nesting deeper than the parser allows
    b'{"schema_version": 1, "org_id": "org_1\\u0000\\u202e", "lead": {}}',  # NUL, RTL, no fields
    b'"just a string"',
    b'{"schema_version": "1\\n2"}',
    b"x" * 5000,  # over MAX_EVENT_BYTES below
    None,  # a null value
]
NASTY_LEAD = {"first_name": "A\u202eB\x00C\n😀", "company": "\"'; DROP TABLE --", "domain": "*"}


@pytest.mark.slow
async def test_hostile_records_end_in_the_dlq_a_status_or_a_counted_rejection(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    from devkit.harness import ServiceHarness
    from service.destinations.memory import MemoryDestination

    memory = MemoryDestination()
    h = ServiceHarness(
        kafka_bootstrap, tmp_path, env={"MAX_EVENT_BYTES": "4096"},
        destinations={"salesforce": memory},
    )  # fmt: skip
    async with h:
        h.write_secret("org_1-salesforce", {"access_token": "t" * 20, "instance_url": "https://x"})
        await h.put_config(make_config("salesforce"))
        for hostile in (b"\x00", b"{}", orjson.dumps({**make_config(), "version": 2, "org_id": 7})):
            await h.producer.send_and_wait(h.settings.topic_configs, hostile, b"org_1:salesforce")
        await h.wait_until(lambda: h.metric("configs_rejected_total", reason="invalid_json") == 1)
        valid = [make_event(reasoning='r\u2028\u202e\x00 😀 \\ "', **NASTY_LEAD) for _ in range(2)]
        for value in INVALID_EVENTS:
            await h.send_event(value, key="org_1:hostile")
        for event in valid:
            await h.send_event(event)
        statuses = await h.wait_statuses(2)
        await h.wait_until(lambda: sum_dlq(h) == len(INVALID_EVENTS), 30, "dead letters")
        dlq = await h.dlq()
        held = h.service.store.get("org_1", "salesforce")
    rejected = sum(
        h.metric("configs_rejected_total", reason=r)
        for r in ("invalid_json", "invalid_schema", "unsupported_schema_version")
    )
    assert rejected == 3 and held is not None and held.version == 1
    assert {s["status"] for s in statuses} == {"delivered"}
    assert {s["event_id"] for s in statuses} == {e["event_id"] for e in valid}
    assert len(dlq) == len(INVALID_EVENTS)
    assert [r.value for r in dlq] == INVALID_EVENTS  # the original bytes, unchanged
    codes = {dict(r.headers)["error.code"].decode() for r in dlq}
    assert codes <= {"invalid_utf8", "invalid_json", "invalid_field", "missing_field",
                     "unsupported_schema_version", "event_too_large", "null_value"}  # fmt: skip


def sum_dlq(h: Any) -> float:
    return sum(h.metric("dlq_total", stage=stage) for stage in ("deserialize", "validate"))
