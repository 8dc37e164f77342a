"""The shared `Destination` contract (tests/unit/destinations/contract.py) for HubSpot:
a 429 names its policy in the body and may say how long in `Retry-After`."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.sandboxes.hubspot import HubSpotSandbox
from service.destinations.hubspot import HubSpotDestination
from tests.unit.destinations.contract import DestinationContract

SECONDLY = {
    "status": "error",
    "message": "You have reached your secondly limit.",
    "errorType": "RATE_LIMIT",
    "policyName": "SECONDLY",
}


class TestHubSpot(DestinationContract):
    name = "hubspot"
    obj = "contacts"
    email_field = "email"
    score_field = "ts_score"
    token_key = "access_token"

    @pytest.fixture
    def sandbox(self, hs: HubSpotSandbox) -> HubSpotSandbox:
        return hs

    def seed(self, sandbox: HubSpotSandbox, email: str) -> str:
        return sandbox.seed(self.obj, email=email)

    def count(self, sandbox: HubSpotSandbox) -> int:
        return len(sandbox.records(self.obj))

    def rate_limit(self, sandbox: HubSpotSandbox, dest: HubSpotDestination) -> float:
        sandbox.inject(429, SECONDLY, headers={"Retry-After": "2"})
        return 2.0

    def server_error(self, sandbox: HubSpotSandbox) -> None:
        sandbox.inject(502, times=10)

    def garble(self, sandbox: HubSpotSandbox) -> None:
        sandbox.garble("invalid_json", path="/crm/v3/objects/")

    def field_names(self, described: Any) -> set[str]:
        return {p["name"] for p in described["results"]}
