"""A circuit breaker per destination credential (§6: time is for the destination).

After THRESHOLD whole-batch transient failures in a row (5xx, timeouts,
connection errors, unreadable answers) the circuit opens: its lanes send
nothing and defer their work without spending attempts. When the open interval
has passed, one lane may send a one-record probe; a success closes the circuit,
a failure opens it again for twice as long (at most MAX_OPEN_S), so a destination
that is down for hours sees a probe a minute, not a stream of retries.
"""

from __future__ import annotations

import functools
import logging
from enum import StrEnum
from time import monotonic

from service.metrics import Metrics
from service.models import DestinationConfig

log = logging.getLogger(__name__)
THRESHOLD = 3
SWEEP_AT = 1024  # circuits held before the closed, failure-free ones are dropped
FIRST_OPEN_S = 5.0
MAX_OPEN_S = 60.0


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"  # a probe is out


class Admit(StrEnum):
    SEND = "send"  # closed: write as usual
    PROBE = "probe"  # half-open: write one record to test the destination
    DEFER = "defer"  # open: write nothing, defer the work


class Circuit:
    def __init__(self, name: str) -> None:
        self.name = name  # destination and credentials ref, for logs
        self.failures = 0
        self.open_s = 0.0  # 0 while closed
        self.probe_at = 0.0  # monotonic
        self.probing = False

    @property
    def is_open(self) -> bool:
        return self.open_s > 0

    def admit(self) -> Admit:
        if not self.is_open:
            return Admit.SEND
        if self.probing or monotonic() < self.probe_at:
            return Admit.DEFER
        self.probing = True
        return Admit.PROBE

    def wait_s(self) -> float:
        """How long deferred work should stay away: until the next probe."""
        return max(0.0, self.probe_at - monotonic()) if self.is_open else 0.0

    def succeeded(self) -> None:
        self.failures = 0
        self.probing = False
        if self.is_open:
            log.warning("circuit closed for %s: the destination answers again", self.name)
            self.open_s = 0.0

    def failed(self, code: str) -> bool:
        """Count a destination-wide failure; True when this opened the circuit."""
        if self.is_open:  # a failed probe: stay open, twice as long
            self.probing = False
            self.open_s = min(MAX_OPEN_S, self.open_s * 2)
            self.probe_at = monotonic() + self.open_s
            return False
        self.failures += 1
        if self.failures < THRESHOLD:
            return False
        self.open_s = FIRST_OPEN_S
        self.probe_at = monotonic() + self.open_s
        log.warning(
            "circuit opened for %s after %d failures in a row (%s); deferring its work",
            self.name,
            self.failures,
            code,
        )
        return True

    def released(self) -> None:
        """A probe that could not be sent (nothing to write): let another try."""
        self.probing = False


class Circuits:
    """One circuit per (destination, credentials ref); `circuit_open{destination}`
    counts the open ones."""

    def __init__(self, metrics: Metrics, destinations: list[str]) -> None:
        self._circuits: dict[tuple[str, str], Circuit] = {}
        self._sweep_at = SWEEP_AT
        for name in destinations:
            metrics.circuit_open.labels(name).set_function(functools.partial(self.open_count, name))

    def get(self, destination: str, credentials_ref: str) -> Circuit:
        key = (destination, credentials_ref)
        circuit = self._circuits.get(key)
        if circuit is None:
            if len(self._circuits) >= self._sweep_at:
                self._sweep()
            circuit = self._circuits[key] = Circuit(f"{destination} ({credentials_ref})")
        return circuit

    def _sweep(self) -> None:
        """Drop circuits a new one would equal (closed, no failures): credentials
        come and go, and memory must not grow with every one ever seen."""
        self._circuits = {key: c for key, c in self._circuits.items() if c.is_open or c.failures}
        self._sweep_at = max(SWEEP_AT, 2 * len(self._circuits))

    def state_of(self, config: DestinationConfig) -> str:
        """The state of the circuit of `config`'s credential, for the status endpoint."""
        circuit = self._circuits.get((config.destination, config.integration.credentials_ref))
        if circuit is None or not circuit.is_open:
            return CircuitState.CLOSED.value
        return (CircuitState.HALF_OPEN if circuit.probing else CircuitState.OPEN).value

    def open_count(self, destination: str) -> int:
        return sum(
            1 for (name, _), c in self._circuits.items() if name == destination and c.is_open
        )
