"""HubSpot destination (contacts, companies); see docs/hubspot.md.

`create(ctx)` builds it with `HubSpotOptions` read from `ctx.options["hubspot"]`.
The modules every CRM package has: `options` (the knobs), `destination` (the
protocol), `client` (`Credentials` and one account's requests), `plan` (pure:
what each evaluation writes, merged per record), `lookup` (read-only: searches,
the preview's lookup and check-config's describe), `current` (the values
`write: if_empty` reads), `writer` (batch calls, a refused batch taken apart),
`errors` (answers -> service errors and per-input results), `outcomes` (results
-> one Outcome per item). HubSpot's own: `limits` (per-token windows, the daily
limit, what a 429 means) and `refusals` (the value refusals HubSpot embeds in
its messages' text, which the other CRMs state in plain fields).
"""

from __future__ import annotations

from service.destinations.base import DestinationContext
from service.destinations.hubspot.destination import HubSpotDestination
from service.destinations.hubspot.options import HubSpotOptions
from service.destinations.hubspot.plan import preview_values

__all__ = ["HubSpotDestination", "HubSpotOptions", "create", "preview_values"]


def create(ctx: DestinationContext) -> HubSpotDestination:
    return HubSpotDestination(ctx)
