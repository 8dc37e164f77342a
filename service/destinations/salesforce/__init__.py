"""Salesforce destination (Lead, Contact, Account): see docs/salesforce.md.

`create(ctx)` builds it with `SalesforceOptions` read from `ctx.options["salesforce"]`.
The modules every CRM package has: `options` (the knobs), `destination` (the
protocol), `client` (`Credentials` and the REST client), `plan` (pure: which
records a batch writes), `lookup` (read-only: records by field, converted Leads,
the preview's lookup and check-config's describe), `current` (the values
`write: if_empty` reads), `errors` (answers -> service errors), `outcomes`
(results -> one Outcome per item). Salesforce's own: `soql` (quoting, IN lists),
`pages` (query pages and their cursors), `mapping` (standard fields, Date values)
and `known` (the record cache and the second round for records that moved: a
converted Lead is followed to its Contact).
"""

from __future__ import annotations

from service.destinations.base import DestinationContext
from service.destinations.salesforce.destination import SalesforceDestination
from service.destinations.salesforce.mapping import preview_values
from service.destinations.salesforce.options import SalesforceOptions

__all__ = ["SalesforceDestination", "SalesforceOptions", "create", "preview_values"]


def create(ctx: DestinationContext) -> SalesforceDestination:
    return SalesforceDestination(ctx)
