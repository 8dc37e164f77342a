"""Airtable destination (issue 6): user-named tables, matched on a column; see
docs/airtable.md.

`create(ctx)` builds it with `AirtableOptions` read from `ctx.options["airtable"]`.
The modules every CRM package has: `options` (the knobs), `destination` (the
protocol), `client` (`Credentials` and the aiohttp client, paced per base by
`service.ratelimit`: 5 requests/s and the 429 penalty), `plan` (pure: routing,
chunking, formulas), `lookup` (read-only: records by the match column, the
preview's lookup and check-config's describe), `current` (the cells
`write: if_empty` reads), `writer` (one target's requests, split on a 422),
`errors` (answers -> service errors, the records an answer holds), `outcomes`
(each target's result -> one Outcome per item). Airtable's own: `sdk_client`
(the same calls through pyairtable in worker threads: option `client: "sdk"`).
"""

from __future__ import annotations

from service.destinations.airtable.destination import AirtableDestination
from service.destinations.airtable.options import AirtableOptions
from service.destinations.airtable.plan import preview_values
from service.destinations.base import DestinationContext

__all__ = ["AirtableDestination", "AirtableOptions", "create", "preview_values"]


def create(ctx: DestinationContext) -> AirtableDestination:
    return AirtableDestination(ctx)
