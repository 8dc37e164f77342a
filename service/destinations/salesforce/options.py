"""The Salesforce destination's knobs, from `ctx.options["salesforce"]` (all optional).

The defaults are production's; tests and the benchmark tune them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.destinations.base import options_from
from service.destinations.cache import DEFAULT_MAX_ENTRIES
from service.destinations.salesforce.client import COLLECTION_LIMIT, NAME
from service.destinations.salesforce.mapping import DEFAULT_TEXT_LIMIT
from service.destinations.salesforce.soql import DEFAULT_URI_BUDGET


@dataclass(frozen=True)
class SalesforceOptions:
    max_batch_size: int = COLLECTION_LIMIT  # items per write()
    collection_size: int = COLLECTION_LIMIT  # records per sObject Collections call (<= 200)
    default_text_limit: int = DEFAULT_TEXT_LIMIT  # a mapped text field without max_lengths
    uri_budget: int = DEFAULT_URI_BUDGET  # bytes of one query's URL
    quota_retry_s: float = 300.0  # the org's daily allocation is spent
    limit_retry_s: float = 10.0  # too many concurrent long requests
    concurrency: int = 4  # requests in flight per write()
    cache_size: int = DEFAULT_MAX_ENTRIES  # record-id cache entries
    token_lifetime_s: float = 3600.0  # Salesforce's token answer says no expires_in

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> SalesforceOptions:
        return options_from(cls, raw, NAME)
