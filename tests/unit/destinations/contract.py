"""What the `Destination` protocol (service/destinations/base.py) promises for every CRM,
written once: each CRM's test_contract.py subclasses `DestinationContract` and plugs in
its HTTPS sandbox (the `sandbox` fixture), its destination (`dest`) and the few hooks
below that say how that CRM stores a lead, fails, limits and describes itself.

A whole-batch `DeliveryError` and one outcome per item are the same fate to the
pipeline (base.py), so `fates` folds both into (state, code) before asserting."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import pytest

from devkit.factories import make_batch, make_config, make_event
from service.destinations.base import Destination, Outcome, RecordQuery
from service.errors import AuthFailed, DeliveryError, RateLimited
from service.models import DeliveryState, DestinationConfig

RETRYING = DeliveryState.RETRYING


async def fates(dest: Destination, batch: Any) -> set[tuple[DeliveryState, str | None]]:
    """(state, error code) of every outcome; a raised error counts for the whole batch."""
    try:
        outcomes = await dest.write(batch)
    except DeliveryError as exc:
        return {(Outcome.from_error(exc).state, exc.code)}
    assert len(outcomes) == len(batch.items)
    return {(o.state, o.error.code if o.error else o.reason) for o in outcomes}


class DestinationContract(ABC):
    """The shared cases; a subclass named Test... runs them against one CRM."""

    name: str  # the CRM, as in a DestinationConfig
    obj: str  # the object (table) leads are written to
    email_field: str  # its column matched on the lead's email
    score_field: str  # its column the score is written to
    token_key: str  # the credentials key holding the secret

    # -- hooks: one CRM's sandbox ------------------------------------------------------
    @abstractmethod
    def seed(self, sandbox: Any, email: str) -> str:
        """Pre-create a record holding `email`; its id."""

    @abstractmethod
    def count(self, sandbox: Any) -> int:
        """Records of `obj` in the sandbox."""

    @abstractmethod
    def rate_limit(self, sandbox: Any, dest: Any) -> float:
        """Make the next request answer this CRM's rate limit; the wait it implies."""

    @abstractmethod
    def server_error(self, sandbox: Any) -> None:
        """Make the next requests answer a 5xx."""

    @abstractmethod
    def garble(self, sandbox: Any) -> None:
        """Cut the next 2xx answer to the write of a known record to invalid JSON."""

    @abstractmethod
    def field_names(self, described: Any) -> set[str]:
        """The field names in this CRM's own describe answer for one object."""

    # -- shared helpers ----------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        target = {
            "object": self.obj,
            "match": {"crm_field": self.email_field, "event_field": "lead.email"},
            "fields": {"score": self.score_field},
            "create_if_missing": True,
        }
        return make_config(self.name, targets=[target])

    def batch(self, sandbox: Any, events: list[dict[str, Any]], **creds: str) -> Any:
        return make_batch(self.config(), events, {**sandbox.credentials(), **creds})

    def parsed(self) -> DestinationConfig:
        return DestinationConfig.model_validate(self.config())

    # -- the contract --------------------------------------------------------------------
    async def test_new_leads_are_each_delivered_with_a_record(
        self, sandbox: Any, dest: Any
    ) -> None:
        events = [make_event(lead_id=f"new{i}") for i in range(3)]
        outcomes = await dest.write(self.batch(sandbox, events))
        assert [o.state for o in outcomes] == [DeliveryState.DELIVERED] * 3
        refs = [ref for o in outcomes for ref in o.records]
        assert [(r.object, r.action) for r in refs] == [(self.obj, "created")] * 3
        assert len({r.id for r in refs}) == 3 and all(r.id for r in refs)
        assert self.count(sandbox) == 3

    async def test_the_same_evaluation_twice_is_one_record(self, sandbox: Any, dest: Any) -> None:
        event = make_event(lead_id="twice")
        [first] = await dest.write(self.batch(sandbox, [event]))
        [again] = await dest.write(self.batch(sandbox, [event]))  # a redelivery
        assert again.state is DeliveryState.DELIVERED
        assert [(r.id, r.action) for r in again.records] == [(first.records[0].id, "updated")]
        assert self.count(sandbox) == 1

    async def test_a_refused_token_is_auth_failed_and_never_echoed(
        self, sandbox: Any, dest: Any
    ) -> None:
        wrong = "wrong-token-0000-1111-2222-3333"
        with pytest.raises(AuthFailed) as caught:
            await dest.write(self.batch(sandbox, [make_event()], **{self.token_key: wrong}))
        assert (caught.value.code, caught.value.retryable) == ("auth_failed", False)
        assert caught.value.http_status == 401
        assert wrong not in str(caught.value.info()) and self.count(sandbox) == 0

    async def test_a_rate_limit_is_raised_with_its_wait(self, sandbox: Any, dest: Any) -> None:
        wait = self.rate_limit(sandbox, dest)
        with pytest.raises(RateLimited) as caught:
            await dest.write(self.batch(sandbox, [make_event()]))
        assert caught.value.retry_after == pytest.approx(wait, abs=0.05)
        assert self.count(sandbox) == 0

    async def test_a_server_error_is_retried(self, sandbox: Any, dest: Any) -> None:
        self.server_error(sandbox)
        got = await fates(dest, self.batch(sandbox, [make_event(), make_event()]))
        assert {state for state, _ in got} == {RETRYING}
        assert self.count(sandbox) == 0

    async def test_an_unreadable_answer_is_bad_response_never_a_miss(
        self, sandbox: Any, dest: Any
    ) -> None:
        self.seed(sandbox, "known@example.com")
        self.garble(sandbox)
        got = await fates(dest, self.batch(sandbox, [make_event(lead_id="known")]))
        assert got == {(RETRYING, "bad_response")}
        assert self.count(sandbox) == 1  # nothing created in its place

    async def test_lookup_finds_a_written_record_and_reports_a_missing_one(
        self, sandbox: Any, dest: Any
    ) -> None:
        [out] = await dest.write(self.batch(sandbox, [make_event(lead_id="seen")]))
        written = out.records[0].id
        creds, cfg = sandbox.credentials(), self.parsed()
        records = self.count(sandbox)
        by_email = RecordQuery(self.obj, field=self.email_field, value="seen@example.com")
        assert await dest.lookup(cfg, creds, by_email) == [written]
        assert await dest.lookup(cfg, creds, RecordQuery(self.obj, id=written)) == [written]
        nobody = RecordQuery(self.obj, field=self.email_field, value="nobody@example.com")
        assert await dest.lookup(cfg, creds, nobody) == []
        assert self.count(sandbox) == records  # read-only: nothing created

    async def test_describe_returns_the_fields_and_none_for_no_such_object(
        self, sandbox: Any, dest: Any
    ) -> None:
        described = await dest.describe(self.parsed(), sandbox.credentials(), [self.obj, "Nope"])
        assert set(described) == {self.obj, "Nope"} and described["Nope"] is None
        assert {self.email_field, self.score_field} <= self.field_names(described[self.obj])
