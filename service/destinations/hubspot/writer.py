"""The write side: batch calls of up to 100 inputs, and a refused batch taken apart.

Records merged per record (plan.merge) go out as `POST /crm/v3/objects/{object}/
batch/{update|upsert|create}` calls, concurrently. A batch HubSpot refuses as a
whole (400, 409, 422) is split: the inputs it names fail alone, the rest is sent
again; else it is halved until the input at fault is alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.destinations.http import Response, error_for_status
from service.destinations.hubspot.client import HubSpotClient, gather_all
from service.destinations.hubspot.errors import (
    fail_all,
    message_of,
    missing_properties,
    per_input,
    permanent,
)
from service.destinations.hubspot.outcomes import Input, Result, operations
from service.destinations.hubspot.plan import Record
from service.destinations.hubspot.refusals import refusals, refused_input
from service.errors import RateLimited, TransientError

SPLITTABLE = (400, 409, 422)  # the batch as a whole was refused: find the bad input


async def send(client: HubSpotClient, records: list[Record], size: int) -> dict[str, Result]:
    """Every merged record written; its input's trace (the record's index) -> result."""
    ops = operations(records)
    parts = await gather_all(
        batch(client, obj, op, inputs, size) for (obj, op, _), inputs in ops.items()
    )
    return {trace: r for part in parts for trace, r in part.items()}


async def batch(
    client: HubSpotClient, obj: str, op: str, inputs: Sequence[Input], size: int
) -> dict[str, Result]:
    """POST /crm/v3/objects/{obj}/batch/{op} in chunks of `size`, one result per input."""
    path = f"/crm/v3/objects/{obj}/batch/{op}"
    chunks = [inputs[i : i + size] for i in range(0, len(inputs), size)]
    out: dict[str, Result] = {}
    for part in await gather_all(_chunk(client, path, c, op == "create") for c in chunks):
        out.update(part)
    return out


async def _chunk(
    client: HubSpotClient, path: str, inputs: Sequence[Input], created: bool
) -> dict[str, Result]:
    body = {"inputs": [{**i.body, "objectWriteTraceId": i.trace} for i in inputs]}
    try:
        resp = await client.post(path, body)
    except RateLimited:
        raise
    except TransientError as exc:  # timeout, connection: these inputs retry
        return fail_all(inputs, exc)
    if resp.ok:
        return per_input(resp.body, inputs, created=created)
    if resp.status in SPLITTABLE:
        return await _isolate(client, path, inputs, resp, created)
    text = message_of(resp.body, f"HubSpot answered HTTP {resp.status}")
    return fail_all(inputs, error_for_status(resp.status, text))


async def _isolate(
    client: HubSpotClient, path: str, inputs: Sequence[Input], resp: Response, created: bool
) -> dict[str, Result]:
    """A refused batch: fail the inputs HubSpot names (a value it refuses, a property
    that does not exist), send the others again; else split it in halves."""
    found = refusals(resp.body)
    refused = [i for i in inputs if any(r.hits(_props(i)) for r in found)]
    bad = missing_properties(resp.body)
    refused += [i for i in inputs if bad & set(_props(i)) and i not in refused]
    if refused:  # each fails at once; the rest is written without them
        out: dict[str, Result] = {
            i.trace: refused_input(found, _props(i), resp.status)
            or permanent(resp.body, resp.status)
            for i in refused
        }
        rest = [i for i in inputs if i not in refused]
        if rest:
            out.update(await _chunk(client, path, rest, created))
        return out
    if len(inputs) == 1:
        error = refused_input(found, _props(inputs[0]), resp.status)
        return fail_all(inputs, error or permanent(resp.body, resp.status))
    mid = len(inputs) // 2
    halves = await gather_all(
        [_chunk(client, path, inputs[:mid], created), _chunk(client, path, inputs[mid:], created)]
    )
    return {**halves[0], **halves[1]}


def _props(i: Input) -> dict[str, Any]:
    props = i.body.get("properties")
    return props if isinstance(props, dict) else {}
