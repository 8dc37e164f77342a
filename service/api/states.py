"""What `GET /v1/destinations` reports, per loaded (org, destination).

The endpoint depends only on the `DestinationStates` Protocol; `ServiceStates`
builds the rows from what the service holds (the ConfigStore, the lanes, the
recent outcomes, the circuit breaker), each read through an injected callable
so that the pipeline can change behind it. Rows never hold credentials, nor the
name of the credentials file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from service.api.outcomes import LastOutcome, LastOutcomes
from service.config.store import ConfigStore
from service.models import DestinationConfig
from service.pipeline.circuit import CircuitState


@dataclass(frozen=True, slots=True)
class DestinationState:
    """One row. Times are RFC 3339 UTC text; None when not seen by this instance
    since it started (each instance sees the partitions it owns)."""

    org_id: str
    destination: str
    config_version: int
    active: bool  # send_evaluations: its events get statuses
    integration_status: str  # `connected`, or why it cannot be written
    lane_depth: int  # deliveries queued or being written by this instance
    circuit: str  # a CircuitState value
    last_status: str | None
    last_status_at: str | None
    last_error_code: str | None
    last_error_at: str | None
    last_delivery_at: str | None  # the last `delivered`


class DestinationStates(Protocol):
    def states(
        self, org_id: str | None = None, destination: str | None = None
    ) -> list[DestinationState]:
        """Rows sorted by (org, destination), optionally only one org / destination."""
        ...


LaneDepth = Callable[[str, str], int]  # (org, destination) -> deliveries pending
CircuitOf = Callable[[DestinationConfig], str]  # the config names the credential


def no_lanes(_org: str, _destination: str) -> int:
    return 0


def no_breaker(_config: DestinationConfig) -> str:
    """Without a breaker (a states provider built on its own): always closed."""
    return CircuitState.CLOSED.value


class ServiceStates:
    def __init__(
        self,
        store: ConfigStore,
        outcomes: LastOutcomes,
        *,
        lane_depth: LaneDepth = no_lanes,
        circuit: CircuitOf = no_breaker,
    ) -> None:
        self.store = store
        self.outcomes = outcomes
        self.lane_depth = lane_depth
        self.circuit = circuit

    def states(
        self, org_id: str | None = None, destination: str | None = None
    ) -> list[DestinationState]:
        rows = []
        for config in self.store.configs():
            if org_id is not None and config.org_id != org_id:
                continue
            if destination is not None and config.destination != destination:
                continue
            last = self.outcomes.get(config.org_id, config.destination) or LastOutcome()
            rows.append(
                DestinationState(
                    org_id=config.org_id,
                    destination=config.destination,
                    config_version=config.version,
                    active=config.send_evaluations,
                    integration_status=config.integration.status,
                    lane_depth=self.lane_depth(config.org_id, config.destination),
                    circuit=self.circuit(config),
                    last_status=last.status,
                    last_status_at=last.status_at,
                    last_error_code=last.error_code,
                    last_error_at=last.error_at,
                    last_delivery_at=last.delivered_at,
                )
            )
        rows.sort(key=lambda row: (row.org_id, row.destination))
        return rows
