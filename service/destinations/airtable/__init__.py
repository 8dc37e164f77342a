"""Airtable destination (issue 6): user-named tables, matched on a column.

`create(ctx)` is what `service.destinations.build_all` calls. Layout: `plan` (pure:
routing, chunking, formulas), `errors` (answers -> service errors), `client`
(aiohttp hot path, paced per base by `service.ratelimit`: 5 requests/s and the 429
penalty), `sdk` (pyairtable in threads, for comparison), `writer` (one target's requests and the
split on 422), `destination` (the protocol). See docs/airtable.md.
"""

from service.destinations.airtable.destination import (
    AirtableDestination,
    AirtableOptions,
    create,
)

__all__ = ["AirtableDestination", "AirtableOptions", "create"]
