"""Salesforce destination (Lead, Contact, Account): see docs/salesforce.md.

`create(ctx)` reads its knobs from `ctx.options["salesforce"]` (all optional):
max_batch_size, collection_size, default_text_limit, uri_budget,
quota_retry_s, limit_retry_s, concurrency, cache_size,
token_lifetime_s.
"""

from __future__ import annotations

from service.destinations.base import DestinationContext
from service.destinations.salesforce.destination import SalesforceDestination

__all__ = ["SalesforceDestination", "create"]


def create(ctx: DestinationContext) -> SalesforceDestination:
    options = ctx.options.get("salesforce") or {}
    return SalesforceDestination(ctx.settings, ctx.metrics, **options)
