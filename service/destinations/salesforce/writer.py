"""The write side: a plan cut into sObject Collections calls, sent, and read back.

`PATCH` updates, `POST` creates, up to 200 records a call with `allOrNone: false`.
A header applies to every record of a call, so creates that let assignment rules
run, and writes that allow duplicates, go in calls of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from service.destinations.salesforce.client import is_batch_error
from service.destinations.salesforce.lookup import Round
from service.destinations.salesforce.outcomes import Result, saved
from service.destinations.salesforce.plan import Plan
from service.errors import DeliveryError
from service.models import RecordRef


class Request(NamedTuple):
    """One sObject Collections call: its method, headers, and the writes it carries."""

    method: str  # PATCH updates, POST creates
    assign: bool  # Sforce-Auto-Assign: TRUE
    allow_save: bool  # Sforce-Duplicate-Rule-Header: allowSave=true
    writes: list[int]


def requests(plan: Plan, size: int) -> Iterator[Request]:
    """PATCH updates, POST creates, objects grouped, <= size each. Headers apply to every
    record of a request, so creates whose target lets assignment rules run, and writes
    whose target allows duplicates, go in requests of their own."""
    groups: dict[tuple[str, bool, bool], list[int]] = {}
    for i, w in enumerate(plan.writes):
        method = "PATCH" if w.record_id is not None else "POST"
        groups.setdefault((method, w.assign and method == "POST", w.allow_save), []).append(i)
    order = sorted(groups, key=lambda g: (g[0] != "PATCH", g[1], g[2]))  # updates first
    for method, assign, allow in order:
        picked = groups[method, assign, allow]
        picked.sort(key=lambda i: plan.writes[i].object)  # fewer type chunks per request
        for start in range(0, len(picked), size):
            yield Request(method, assign, allow, picked[start : start + size])


async def execute(rnd: Round, plan: Plan, size: int) -> list[Result]:
    """Every planned write's result; a request's failure is its records' failure."""
    chunks = list(requests(plan, size))
    calls = [
        rnd.client.collection(
            rnd.creds, c.method, [plan.writes[i].body() for i in c.writes],
            auto_assign=c.assign, allow_save=c.allow_save,
        )
        for c in chunks
    ]  # fmt: skip
    results: list[Result | None] = [None] * len(plan.writes)
    for chunk, answer in zip(chunks, await rnd.gather(calls), strict=True):
        if isinstance(answer, BaseException) and not isinstance(answer, DeliveryError):
            raise answer
        for n, i in enumerate(chunk.writes):
            write = plan.writes[i]
            results[i] = answer if isinstance(answer, DeliveryError) else saved(write, answer[n])
    done = [r for r in results if r is not None]
    if len(done) != len(plan.writes):  # fold() indexes results by write
        raise RuntimeError("a planned write was not sent")
    if not any(isinstance(r, RecordRef) for r in done):
        batch_wide = [r for r in done if isinstance(r, DeliveryError) and is_batch_error(r)]
        if batch_wide:  # the org refused everything: let the lane back off as one
            raise batch_wide[0]
    return done
