"""The shared `Destination` contract (tests/unit/destinations/contract.py) for Airtable:
a 429 locks the whole base; `Retry-After`, when sent, says for how long."""

from __future__ import annotations

from typing import Any

from devkit.sandboxes.airtable import AirtableSandbox
from service.destinations.airtable import AirtableDestination
from tests.unit.destinations.contract import DestinationContract


class TestAirtable(DestinationContract):
    name = "airtable"
    obj = "Contacts"
    email_field = "Email"
    score_field = "TS Score"
    token_key = "api_key"

    def seed(self, sandbox: AirtableSandbox, email: str) -> str:
        [rid] = sandbox.seed(self.obj, [{"Email": email}])
        return rid

    def count(self, sandbox: AirtableSandbox) -> int:
        return len(sandbox.table(self.obj))

    def rate_limit(self, sandbox: AirtableSandbox, dest: AirtableDestination) -> float:
        sandbox.inject(429, "TOO_MANY_REQUESTS", headers={"Retry-After": "0.5"})
        return 0.5

    def server_error(self, sandbox: AirtableSandbox) -> None:
        sandbox.inject(503, "SERVICE_UNAVAILABLE", times=10)

    def garble(self, sandbox: AirtableSandbox) -> None:
        sandbox.garble("invalid_json", path="/v0/", method="PATCH")

    def field_names(self, described: Any) -> set[str]:
        return {f["name"] for f in described["fields"]}
