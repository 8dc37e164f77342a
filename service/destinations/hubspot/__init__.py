"""HubSpot destination (contacts, companies); see docs/hubspot.md.

`create(ctx)` is what `service.destinations.build_all` calls.
"""

from __future__ import annotations

from service.destinations.base import DestinationContext
from service.destinations.hubspot.destination import HubSpotDestination
from service.destinations.hubspot.limits import HubSpotOptions

__all__ = ["HubSpotDestination", "HubSpotOptions", "create"]


def create(ctx: DestinationContext) -> HubSpotDestination:
    return HubSpotDestination(ctx)
