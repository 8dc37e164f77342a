"""The shared `Destination` contract (tests/unit/destinations/contract.py) for Salesforce.
Salesforce sends no 429: its rate limit is a 403 REQUEST_LIMIT_EXCEEDED for too many
long requests, with no header, and the wait is the `limit_retry_s` option."""

from __future__ import annotations

from typing import Any

from devkit.sandboxes.salesforce import SalesforceSandbox
from service.destinations.salesforce import SalesforceDestination
from tests.unit.destinations.contract import DestinationContract


class TestSalesforce(DestinationContract):
    name = "salesforce"
    obj = "Lead"
    email_field = "Email"
    score_field = "TS_Score__c"
    token_key = "access_token"

    def seed(self, sandbox: SalesforceSandbox, email: str) -> str:
        [rid] = sandbox.seed(self.obj, {"LastName": "L", "Company": "C", "Email": email})
        return rid

    def count(self, sandbox: SalesforceSandbox) -> int:
        return len(sandbox.records(self.obj))

    def rate_limit(self, sandbox: SalesforceSandbox, dest: SalesforceDestination) -> float:
        sandbox.fail(403, message="ConcurrentPerOrgLongTxn Limit exceeded.", times=1)
        return dest.options.limit_retry_s

    def server_error(self, sandbox: SalesforceSandbox) -> None:
        sandbox.fail(503)

    def garble(self, sandbox: SalesforceSandbox) -> None:
        sandbox.garble("invalid_json", path="/composite/sobjects")  # the update's answer

    def field_names(self, described: Any) -> set[str]:
        return {f["name"] for f in described["fields"]}
