"""Fuzzed CRM answers (issue 19, findings 1, 2 and 13): every request a destination
makes (lookups, paging, writes, token grants) gets the valid answer of a world in
which every lead has its record (tests/unit/destinations/crm_fuzz_world.py), then hypothesis mangles
it: nulls, wrong types, missing keys, short or padded lists, huge numbers, unicode,
bodies that are not JSON, other statuses, absurd headers (Retry-After `1e12`,
`inf`, `-5`, `nan`, year 9999), timeouts, and Salesforce cursors that leave the
instance, loop or never end.

Whatever the answers, `write` returns one Outcome per item or raises a
DeliveryError; waits stay finite and bounded; no request leaves the CRM's host;
no parser needs the boundary (destinations/answers.py) to catch it; and when
every mangled answer was unreadable (not merely different), no item ends
`record_not_found` and nothing is created.
"""

from __future__ import annotations

import asyncio
import copy
import math
from collections.abc import Callable
from typing import Any
from unittest import mock

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit.factories import make_batch, make_config, make_event
from service.destinations import answers
from service.destinations.airtable import destination as airtable_module
from service.destinations.base import Destination, DestinationContext, Outcome
from service.destinations.hubspot import destination as hubspot_module
from service.destinations.salesforce import destination as salesforce_module
from service.errors import DeliveryError
from service.metrics import Metrics
from service.models import DeliveryState
from service.settings import Settings
from tests.unit.destinations.crm_fuzz_world import (
    AT_URL,
    HS_URL,
    SF_URL,
    Answer,
    FakeSession,
    Request,
    SalesforceWorld,
    airtable_world,
    fake_id,
    hubspot_world,
)

FUZZ = settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)  # JSON-encodable unicode
JUNK: list[Any] = [None, 0, -1, 1.5, 1e300, 2**70, True, False, "", "ünï©ødé ☃\u202e\x00",
                   [], [None], [1, "x"], {}, {"x": None}]  # fmt: skip
RAW = [b"<html>502 Bad Gateway</html>", b"{", b"\xff\xfe\x00", b"", b"null", b"5", b'"x"',
       b"[]", b"{}", b"[{}]", b"1e400"]  # fmt: skip
ABSURD_HEADERS = [
    {"Retry-After": v} for v in ("1e12", "inf", "-5", "nan", "Fri, 31 Dec 9999 23:59:59 GMT", "?")
] + [
    {"X-HubSpot-RateLimit-Max": "1", "X-HubSpot-RateLimit-Interval-Milliseconds": "10" * 8},
    {"X-HubSpot-RateLimit-Max": "0", "X-HubSpot-RateLimit-Interval-Milliseconds": "-1"},
    {"X-HubSpot-RateLimit-Daily": "1", "X-HubSpot-RateLimit-Daily-Remaining": "9" * 30},
    {"X-HubSpot-RateLimit-Daily": "²", "X-HubSpot-RateLimit-Daily-Remaining": "0"},
    {"Sforce-Limit-Info": "api-usage=" + "9" * 30 + "/1"},
    {"Sforce-Limit-Info": "api-usage=5/0"},
]
STATUSES = [200, 201, 204, 207, 400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503]
ERROR_BODIES: dict[str, list[Any]] = {
    "salesforce": [
        [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}],
        [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "ConcurrentPerOrgLongTxn"}],
        [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired"}],
        [{"errorCode": "UNABLE_TO_LOCK_ROW", "message": "locked"}],
        [{"errorCode": "INVALID_FIELD", "message": "No such column 'TS_Score__c'"}],
        [{"success": False, "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "x"}]}],
        [{"success": False, "errors": [{"statusCode": "CANNOT_UPDATE_CONVERTED_LEAD"}]}],
    ],
    "hubspot": [
        {"status": "error", "category": "RATE_LIMITS", "policyName": "DAILY", "message": "day"},
        {"status": "error", "category": "RATE_LIMITS", "policyName": "TEN_SECONDLY_ROLLING"},
        {
            "category": "VALIDATION_ERROR",
            "message": "Property values were not valid",
            "errors": [
                {"code": "PROPERTY_DOESNT_EXIST", "context": {"propertyName": ["ts_score"]}}
            ],
        },
        {
            "status": "COMPLETE",
            "results": [],
            "errors": [
                {
                    "category": "OBJECT_NOT_FOUND",
                    "context": {"ids": ["1"], "objectWriteTraceId": ["0"]},
                }
            ],
        },
        {"category": "OBJECT_NOT_FOUND", "message": "not found"},
    ],
    "airtable": [
        {"error": {"type": "MODEL_ID_NOT_FOUND", "message": "Could not find record"}},
        {"error": "NOT_FOUND"},
        {"error": {"type": "INVALID_VALUE_FOR_COLUMN", "message": 'Field "TS Score" cannot'}},
        {"error": {"type": "UNKNOWN_FIELD_NAME", "message": 'Unknown field name: "TS Score"'}},
        {"error": {"type": "TOO_MANY_REQUESTS"}},
    ],
}
# Mangles whose answer is still a readable answer, only a different one: a value
# changed, another status. The one a miss may legitimately follow from.
DIFFERENT = {"unicode", "status", "fail_one"}
RECORD_ERRORS = {
    "salesforce": ["FIELD_CUSTOM_VALIDATION_EXCEPTION", "UNABLE_TO_LOCK_ROW", "ENTITY_IS_DELETED",
                   "CANNOT_UPDATE_CONVERTED_LEAD", "INVALID_CROSS_REFERENCE_KEY"],
    "hubspot": ["VALIDATION_ERROR", "OBJECT_NOT_FOUND", "CONFLICT"],
    "airtable": ["INVALID_VALUE_FOR_COLUMN", "MODEL_ID_NOT_FOUND", "ROW_DOES_NOT_EXIST"],
}  # fmt: skip
KINDS = ["none"] * 6 + [
    "null", "wrong_type", "missing", "short", "padded", "duplicate", "extra_key", "huge",
    "unicode", "raw", "status", "headers", "timeout", "disconnect",
    "foreign_next", "loop_next", "endless_next", "fail_one", "fail_one",
]  # fmt: skip
LOOP = "/services/data/v62.0/query/01gLOOP000000-1"


def salesforce_failures(code: str) -> list[Any]:
    valid = {"statusCode": code, "message": "refused", "fields": ["TS_Score__c"]}
    return [
        {"success": False, "errors": [valid]},
        {"success": False, "errors": None}, {"success": False, "errors": []},
        {"success": False, "errors": 1}, {"success": False, "errors": "x"},
        {"success": False, "errors": [5]}, {"success": False, "errors": [{"statusCode": None}]},
        {"success": False, "errors": [{**valid, "fields": 5, "message": None}]},
        {"success": False, "errors": [{**valid, "fields": None}, None]},
        {"success": False}, {"success": "false", "errors": [valid]}, {"success": None}, None, 5,
    ]  # fmt: skip


def hubspot_failures(code: str, trace: Any, rid: Any) -> list[Any]:
    valid = {"status": "error", "category": code, "message": "refused",
             "context": {"objectWriteTraceId": [trace], "ids": [rid]}}  # fmt: skip
    return [
        [valid], 1, "x", [None], [{**valid, "context": []}], [{**valid, "context": None}],
        [{**valid, "context": {"objectWriteTraceId": 5, "ids": None}}],
        [{**valid, "context": {"objectWriteTraceId": trace, "ids": [None, 1, {}]}}],
        [{**valid, "category": None, "message": {"a": 1}}], [{**valid, "errors": 1}],
    ]  # fmt: skip


def airtable_failures(code: str) -> list[Any]:
    message = 'Field "TS Score" cannot accept the provided value'
    return [
        {"error": {"type": code, "message": message}}, {"error": None}, {"error": 5},
        {"error": {"type": None, "message": 5}}, {"error": [code]}, {"error": code},
        {"error": {"type": code, "message": None}}, None, "text",
    ]  # fmt: skip


HUGE = [1e300, -1, 2**64, 0, 10**30]


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _nodes(child, (*path, key))
    elif isinstance(value, list):
        for n, child in enumerate(value):
            out += _nodes(child, (*path, n))
    return out


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _kind_of(value: Any) -> str:
    return "number" if type(value) in (int, float) else type(value).__name__


APPLIES: dict[str, Callable[[Any, Any], bool]] = {  # (node, parent) -> can this kind apply
    "null": lambda v, p: v is not None,
    "wrong_type": lambda v, p: True,
    "missing": lambda v, p: isinstance(p, dict),
    "short": lambda v, p: isinstance(v, list) and bool(v),
    "padded": lambda v, p: isinstance(v, list),
    "duplicate": lambda v, p: isinstance(v, list) and bool(v),
    "extra_key": lambda v, p: isinstance(v, dict),
    "huge": lambda v, p: type(v) in (int, float),
    "unicode": lambda v, p: isinstance(v, str),
}


# Each endpoint draws its own mangles: a write is not starved by the lookups before it.
ENDPOINTS = {
    "salesforce": ["token", "query", "page", "PATCH", "POST"],
    "hubspot": ["token", "search", "read", "update", "upsert", "create"],
    "airtable": ["GET", "PATCH"],
}


def endpoint_of(request: Request) -> str:
    path = request.path
    if path.endswith("/token"):
        return "token"
    if "/query/" in path:
        return "page"
    if path.endswith("/query") or path.endswith("/search"):
        return path.rsplit("/", 1)[1]
    return path.rsplit("/", 1)[1] if "/batch/" in path else request.method


Spec = tuple[str, int, int, str]  # kind, two choices, a text
SPEC = st.tuples(st.sampled_from(KINDS), st.integers(0, 999), st.integers(0, 999), TEXT)


def pick(options: list[Any], n: int) -> Any:
    return options[n % len(options)]


class Mangler:
    """Mangles answers from a tape drawn beforehand (hypothesis may not draw inside
    the destination's tasks); remembers what it did, for the oracle."""

    def __init__(self, tape: dict[str, list[list[Spec]]], crm: str) -> None:
        self.tape = {endpoint: iter(specs) for endpoint, specs in tape.items()}
        self.crm = crm
        self.done: list[tuple[str, str, str]] = []  # (kind, method, path)
        self.endless = 0

    def __call__(self, request: Request, answer: Answer) -> Answer:
        if request.path == LOOP:
            return Answer(200, {"totalSize": 0, "done": False, "records": [],
                                "nextRecordsUrl": LOOP})  # fmt: skip
        if "01gENDLESS" in request.path:
            self.endless += 1
            nxt = f"/services/data/v62.0/query/01gENDLESS{self.endless:06d}-1"
            return Answer(200, {"done": False, "records": [], "nextRecordsUrl": nxt})
        specs = next(self.tape[endpoint_of(request)], [])
        for spec in specs:  # one or two mangles, the second on the first's
            mangled = self._apply(spec, request, answer)
            if mangled is not None:
                self.done.append((spec[0], request.method, request.path))
                answer = mangled
        return answer

    def _apply(self, spec: Spec, request: Request, answer: Answer) -> Answer | None:
        kind, i, j, _ = spec
        if kind == "timeout":
            raise TimeoutError
        if kind == "disconnect":
            raise aiohttp.ServerDisconnectedError()
        if kind == "raw":
            return Answer(answer.status, pick(RAW, i), answer.headers)
        if kind == "headers":
            return Answer(answer.status, answer.body, answer.headers | pick(ABSURD_HEADERS, i))
        if kind == "status":
            body = pick([*ERROR_BODIES[self.crm], answer.body], j)
            headers = pick([{}, *ABSURD_HEADERS], i // 7)
            return Answer(pick(STATUSES, i), body, answer.headers | headers)
        if kind.endswith("_next"):
            if not (request.path.endswith("/query") and isinstance(answer.body, dict)):
                return None
            body = {**answer.body, "done": False}
            body["nextRecordsUrl"] = {
                "foreign_next": "https://evil.fuzz.example/services/data/v62.0/query/01gX-1",
                "loop_next": LOOP,
                "endless_next": "/services/data/v62.0/query/01gENDLESS000000-1",
            }[kind]
            return Answer(answer.status, body, answer.headers)
        if kind == "fail_one":
            return self._fail_one(spec, request, answer)
        if kind == "none" or isinstance(answer.body, bytes):
            return None
        return self._node(spec, answer)

    def _fail_one(self, spec: Spec, request: Request, answer: Answer) -> Answer | None:
        """An answer in which one record failed: first the valid shape, then the
        shapes the error parsers must survive (picked by the spec's choices)."""
        _, i, j, _ = spec
        body = copy.deepcopy(answer.body)
        code = pick(RECORD_ERRORS[self.crm], j)
        shape = i // 10
        if self.crm == "salesforce" and isinstance(body, list) and body:
            body[i % len(body)] = pick(salesforce_failures(code), shape)
            return Answer(answer.status, body, answer.headers)
        batch = "/batch/" in request.path
        results = body.get("results") if isinstance(body, dict) else None
        if self.crm == "hubspot" and batch and isinstance(results, list) and results:
            gone = results.pop(i % len(results))
            trace, rid = (gone.get("objectWriteTraceId"), gone.get("id")) if isinstance(
                gone, dict
            ) else (None, None)  # fmt: skip
            body["errors"] = pick(hubspot_failures(code, trace, rid), shape)
            return Answer(207, body, answer.headers)
        if self.crm == "airtable" and request.method == "PATCH":
            status = 404 if code == "MODEL_ID_NOT_FOUND" else 422
            return Answer(status, pick(airtable_failures(code), shape), answer.headers)
        return None

    def _node(self, spec: Spec, answer: Answer) -> Answer | None:
        kind, i, j, text = spec
        body = copy.deepcopy(answer.body)
        fits = [
            p for p in _nodes(body)
            if APPLIES[kind](_at(body, p), _at(body, p[:-1]) if p else None)
        ]  # fmt: skip
        if not fits:
            return None
        groups: dict[str, list[tuple[Any, ...]]] = {}  # by key name: rare keys get hit too
        for p in fits:
            label = p[-1] if p and isinstance(p[-1], str) else ("[]" if p else "root")
            groups.setdefault(label, []).append(p)
        path = pick(pick(list(groups.values()), i), i // 7)
        node = _at(body, path)
        if kind == "missing":
            del _at(body, path[:-1])[path[-1]]
            return Answer(answer.status, body, answer.headers)
        if kind == "short":
            node.pop()
        elif kind == "padded":
            node.append(pick(JUNK, j))
        elif kind == "duplicate":
            node.append(copy.deepcopy(node[0]))
        elif kind == "extra_key":
            node["zz_extra"] = pick(JUNK, j)
        else:
            others = [v for v in JUNK if _kind_of(v) != _kind_of(node)]
            choices = {"null": [None], "wrong_type": others, "huge": HUGE, "unicode": [text]}
            value = pick(choices[kind], j)
            if not path:
                return Answer(answer.status, value, answer.headers)
            _at(body, path[:-1])[path[-1]] = value
        return Answer(answer.status, body, answer.headers)

    def only_unreadable(self) -> bool:
        """Every mangle left an answer that cannot be read (or none was made): a miss
        or a create may then only come from reading one as "no record"."""
        return not any(
            kind in DIFFERENT or (kind == "short" and self.crm == "airtable" and method == "GET")
            for kind, method, _ in self.done
        )


SETTINGS = Settings(bootstrap_servers="unused:9092")
HOSTS = {
    "salesforce": "sf.fuzz.example",
    "hubspot": "hs.fuzz.example",
    "airtable": "at.fuzz.example",
}
OAUTH = {"refresh_token": "fuzz-refresh-0001", "client_id": "fuzz-client-0001",
         "client_secret": "fuzz-secret-0001"}  # fmt: skip


def events(data: st.DataObject, crm: str, crm_objects: list[str]) -> list[dict[str, Any]]:
    """1-4 leads of one org, each with an email and a domain, some with crm ids."""
    out = []
    for n in range(data.draw(st.integers(1, 4), label="items")):
        email, domain = f"lead{n}@fuzz.example", f"d{n % 2}.fuzz.example"
        ids = {obj: fake_id("00Q" if crm == "salesforce" else "rec" if crm == "airtable" else "1",
                            obj, email) for obj in crm_objects}  # fmt: skip
        known = data.draw(st.booleans(), label=f"crm ids {n}")
        out.append(make_event(email=email, domain=domain, crm_ids={crm: ids} if known else None))
    return out


def if_empty(data: st.DataObject) -> dict[str, str]:
    """`write: if_empty` (contract §4a) or not: its reads are fuzzed like any lookup."""
    return {"write": "if_empty" if data.draw(st.booleans(), label="if_empty") else "always"}


def salesforce_case(data: st.DataObject) -> tuple[Destination, dict[str, Any], dict[str, Any]]:
    create = data.draw(st.booleans(), label="create_if_missing")
    keep = if_empty(data)
    target = {"object": "Lead", "match": {"crm_field": "Email", "event_field": "lead.email"},
              "fields": {"score": "TS_Score__c"}, "create_if_missing": create,
              "field_options": {"score": keep}}  # fmt: skip
    propensity = {"enabled": True, "object": "Account", "field": "TS_Propensity__c",
                  "match": {"crm_field": "Website", "event_field": "lead.domain"},
                  **keep}  # fmt: skip
    config = make_config("salesforce", targets=[target], propensity=propensity)
    creds: dict[str, Any] = {"instance_url": SF_URL, "access_token": "00Dfuzz!static-0001"}
    if data.draw(st.booleans(), label="refresh token"):
        creds = {"instance_url": SF_URL, **OAUTH}
    return (
        salesforce_module.SalesforceDestination(DestinationContext(SETTINGS, Metrics())),
        config,
        creds,
    )


def hubspot_case(data: st.DataObject) -> tuple[Destination, dict[str, Any], dict[str, Any]]:
    create = data.draw(st.booleans(), label="create companies")
    keep = if_empty(data)
    contacts = {"object": "contacts", "match": {"crm_field": "email", "event_field": "lead.email"},
                "fields": {"score": "ts_score"}, "create_if_missing": True,
                "field_options": {"score": keep}}  # fmt: skip
    companies = {"object": "companies", "fields": {"reasoning": "ts_reasoning"},
                 "match": {"crm_field": "domain", "event_field": "lead.domain"},
                 "create_if_missing": create, "field_options": {"reasoning": keep}}  # fmt: skip
    config = make_config("hubspot", targets=[contacts, companies])
    creds: dict[str, Any] = {"base_url": HS_URL, "access_token": "hs-static-token-0001"}
    if data.draw(st.booleans(), label="refresh token"):
        creds = {"base_url": HS_URL, **OAUTH}
    options = {"search_spacing_s": 0.0, "search_requests": 10_000, "max_requests": 10_000}
    ctx = DestinationContext(SETTINGS, Metrics(), {"hubspot": options})
    return hubspot_module.HubSpotDestination(ctx), config, creds


def airtable_case(data: st.DataObject) -> tuple[Destination, dict[str, Any], dict[str, Any]]:
    create = data.draw(st.booleans(), label="create_if_missing")
    by_email = {"crm_field": "Email", "event_field": "lead.email"}
    keep = if_empty(data)
    contacts = {"object": "Contacts", "match": by_email, "fields": {"score": "TS Score"},
                "create_if_missing": create, "field_options": {"score": keep}}  # fmt: skip
    leads = {"object": "Leads", "match": by_email, "fields": {"reasoning": "TS Reasoning"},
             "field_options": {"reasoning": keep}}  # fmt: skip
    config = make_config("airtable", targets=[contacts, leads])  # an upsert or lookup, a lookup
    creds = {"api_key": "patfuzz.airtable-key-0001", "base_id": "appFUZZ", "base_url": AT_URL}
    ctx = DestinationContext(SETTINGS, Metrics(), {"airtable": {"requests_per_second": 100_000}})
    return airtable_module.AirtableDestination(ctx), config, creds


CASES = {
    "salesforce": (salesforce_case, salesforce_module, ["Lead"]),
    "hubspot": (hubspot_case, hubspot_module, ["contacts", "companies"]),
    "airtable": (airtable_case, airtable_module, ["Contacts", "Leads"]),
}


def creates(crm: str, requests: list[Request]) -> list[Request]:
    if crm == "salesforce":
        return [
            r for r in requests if r.method == "POST" and r.path.endswith("/composite/sobjects")
        ]
    if crm == "hubspot":
        return [r for r in requests if r.path.endswith("/batch/create")]
    return []


def check_wait(seconds: float | None) -> None:
    assert seconds is None or (math.isfinite(seconds) and 0 <= seconds <= 86_400), seconds


async def run(crm: str, data: st.DataObject) -> None:
    build, module, objects = CASES[crm]
    dest, config, creds = build(data)
    world = SalesforceWorld(page_size=data.draw(st.integers(1, 3))) if crm == "salesforce" else (
        hubspot_world if crm == "hubspot" else airtable_world)  # fmt: skip
    per_answer = st.lists(st.lists(SPEC, min_size=1, max_size=2), max_size=6)
    tape = data.draw(st.fixed_dictionaries(dict.fromkeys(ENDPOINTS[crm], per_answer)), label="tape")
    mangler = Mangler(tape, crm)
    session = FakeSession(world, mangler)
    batch = make_batch(config, events(data, crm, objects), creds)
    surprises: list[str] = []
    original = answers.converted

    def spotted(destination: str, exc: Exception) -> Any:
        surprises.append(f"{type(exc).__name__}: {exc}")
        return original(destination, exc)

    with (
        mock.patch.object(module, "new_session", lambda *a, **k: session),
        mock.patch.object(answers, "converted", spotted),
    ):
        await dest.setup()
        try:
            outcomes: list[Outcome] | DeliveryError = await asyncio.wait_for(dest.write(batch), 30)
        except DeliveryError as exc:
            outcomes = exc
        finally:
            await dest.close()
    assert not surprises, surprises  # every shape was foreseen by a parser
    assert {r.url.host for r in session.requests} <= {HOSTS[crm]}  # the token stays home
    if isinstance(outcomes, DeliveryError):
        check_wait(getattr(outcomes, "retry_after", None))
        return
    assert len(outcomes) == len(batch.items) and all(isinstance(o, Outcome) for o in outcomes)
    for outcome in outcomes:
        check_wait(outcome.retry_after)
    if mangler.only_unreadable():  # fields_kept is what a readable read said, not a miss
        misses = [o for o in outcomes if o.state is DeliveryState.SKIPPED
                  and o.reason != "fields_kept"]  # fmt: skip
        assert not misses, (misses, mangler.done)
        assert not creates(crm, session.requests), mangler.done


@pytest.mark.parametrize("crm", sorted(CASES))
@FUZZ
@given(data=st.data())
def test_any_answer_ends_in_outcomes_or_a_delivery_error(crm: str, data: st.DataObject) -> None:
    asyncio.run(run(crm, data))
