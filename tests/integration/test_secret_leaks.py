"""Tokens never leave the process (issue 13): the real service on a real broker writes
to the three HTTPS sandboxes with tokens of a known shape, through successes, CRM
errors that echo the token, a rejected (401) token, an invalid event and a crash
whose traceback carries the token. Then everything captured is searched: the log
output in both formats, the status topic, the DLQ topic (values and headers) and
/metrics. Airtable runs through its SDK client (pyairtable), so an SDK's exceptions
are on the path too."""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from devkit.factories import make_config, make_event
from devkit.harness import ServiceHarness
from devkit.sandboxes.airtable import AirtableSandbox
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.store import error_body
from devkit.sandboxes.salesforce import SalesforceSandbox
from service.destinations import build_all
from service.destinations.airtable.destination import AirtableDestination
from service.destinations.base import Batch, Destination, DestinationContext, Outcome
from service.logs import JsonFormatter, TextFormatter
from service.redact import RedactingFilter

ORG = "leak-org"
CRASH = "crash@example.com"


def canary(prefix: str) -> str:
    """A token of a known shape, unique to this run, e.g. `00DCANARY!sf<hex>`."""
    return f"{prefix}CANARY{secrets.token_hex(12)}"


class Crashing:
    """The real Salesforce destination, except that a lead with CRASH as email makes
    it raise an exception quoting the request's Authorization header and the
    credentials it was handed, like an SDK exception echoing a request would."""

    def __init__(self, inner: Destination) -> None:
        self.inner = inner
        self.name, self.max_batch_size = inner.name, inner.max_batch_size

    async def setup(self) -> None:
        await self.inner.setup()

    async def close(self) -> None:
        await self.inner.close()

    async def write(self, batch: Batch) -> list[Outcome]:
        if any(item.event.lead.email == CRASH for item in batch.items):
            token = batch.credentials["access_token"].get_secret_value()
            raise RuntimeError(f"Authorization: Bearer {token}\ncredentials={batch.credentials}")
        return await self.inner.write(batch)


@pytest.fixture
def captured_logs() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """Everything logged, at DEBUG, through the service's own JSON and text formats."""
    streams = io.StringIO(), io.StringIO()
    handlers = [logging.StreamHandler(s) for s in streams]
    for handler, formatter in zip(handlers, (JsonFormatter(), TextFormatter()), strict=True):
        handler.addFilter(RedactingFilter())
        handler.setFormatter(formatter)
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.DEBUG)
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield streams
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(old_level)


@pytest.mark.slow
async def test_no_token_reaches_logs_topics_or_metrics(
    kafka_bootstrap: str, tmp_path: Path, captured_logs: tuple[io.StringIO, io.StringIO]
) -> None:
    tls = tmp_path / "tls"
    tls.mkdir()
    sf_token, hs_token, at_token = canary("00D!sf"), canary("pat-hs"), canary("patAT.")
    tokens = {"salesforce": sf_token, "hubspot": hs_token, "airtable": at_token}
    async with (
        SalesforceSandbox(tls, token=sf_token) as sf,
        HubSpotSandbox(tls, token=hs_token) as hs,
        AirtableSandbox(tls, token=at_token, rate_limit=1000) as at,
    ):
        destinations: dict[str, Destination] = {}
        h = ServiceHarness(
            kafka_bootstrap,
            tmp_path,
            env={"DESTINATION_CA_FILE": str(sf.ca_file), "MAX_ATTEMPTS": "2"},
            destinations=destinations,
        )
        ctx = DestinationContext(h.settings, h.metrics, {"airtable": {"client": "sdk"}})
        real = build_all(ctx)
        destinations.update(real)
        destinations["salesforce"] = Crashing(real["salesforce"])
        destinations["airtable"] = AirtableDestination(ctx)
        sf.seed("Lead", {"Email": "ada@example.com", "LastName": "L", "Company": "C"})
        async with h:
            h.write_secret(f"{ORG}-salesforce", sf.credentials())
            h.write_secret(f"{ORG}-hubspot", hs.credentials())
            h.write_secret(f"{ORG}-airtable", at.credentials())
            for destination in tokens:
                await h.put_config(make_config(destination, ORG))

            await h.send_event(make_event(ORG, email="ada@example.com"))  # delivered x3
            await h.wait_statuses(3)
            # CRM errors whose text quotes the token.
            sf.fail(400, code="INVALID_FIELD", message=f"bad session {sf_token}", times=1)
            hs.inject(400, error_body(f"token {hs_token} is invalid", "VALIDATION_ERROR"))
            at.inject(422, "INVALID_VALUE_FOR_COLUMN", message=f"key {at_token} refused")
            await h.send_event(make_event(ORG, email="ada@example.com"))
            await h.wait_statuses(6)
            # The CRMs stop accepting the tokens (a rotation not yet mounted): 401s.
            sf.token, hs.token, at.token = "rotated-1", "rotated-2", "rotated-3"
            await h.send_event(make_event(ORG, email="ada@example.com"))
            await h.wait_statuses(9)
            # A crash whose exception and traceback quote the token.
            await h.send_event(make_event(ORG, email=CRASH))
            crash_logged = "unexpected error delivering to salesforce"
            await h.wait_until(lambda: crash_logged in captured_logs[0].getvalue(), 30, "crash")
            # An invalid event that goes to the DLQ.
            await h.send_event(b'{"schema_version": 1, "org_id": "leak-org"', key="leak-org:x")
            await h.wait_until(lambda: h.metric("dlq_total", stage="deserialize") == 1)
            dlq = await h.dlq()
            metrics_text = h.metrics_text()
            statuses = list(h.statuses)

    json_log, text_log = (s.getvalue() for s in captured_logs)
    failed = {(s["destination"], s["error"]["code"]) for s in statuses if s["status"] == "failed"}
    # The paths that could leak were really taken.
    assert {("salesforce", "auth_failed"), ("hubspot", "auth_failed")} <= failed
    assert ("airtable", "auth_failed") in failed
    assert any(s["error"] and "***" in s["error"]["message"] for s in statuses)
    assert "RuntimeError" in json_log and "RuntimeError" in text_log  # the traceback
    assert len(dlq) == 1 and dlq[0].headers
    everything = {
        "json log": json_log,
        "text log": text_log,
        "statuses": orjson.dumps(statuses).decode(),
        "dlq": repr([(r.key, r.value, r.headers) for r in dlq]),
        "metrics": metrics_text,
    }
    for name, text in everything.items():
        for destination, token in tokens.items():
            assert token not in text, f"{destination} token in {name}"
        assert "CANARY" not in text, name  # nor any part-masked remnant of one
    for line in text_log.splitlines():  # one record per line, tracebacks included
        assert line[:4].isdigit(), line
    for line in json_log.splitlines():
        orjson.loads(line)


def logged(exc: BaseException) -> list[str]:
    """`exc` logged with its traceback through the JSON and the text formatter."""
    lines = []
    log = logging.getLogger("sdk-test")
    for formatter in (JsonFormatter(), TextFormatter()):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.addFilter(RedactingFilter())
        handler.setFormatter(formatter)
        log.addHandler(handler)
        try:
            log.error("sdk call failed", exc_info=exc)
        finally:
            log.removeHandler(handler)
        lines.append(stream.getvalue())
    return lines


async def test_the_sdks_own_exceptions_echo_tokens_and_logging_masks_them(
    tmp_path: Path,
) -> None:
    """The SDKs put the CRM's answer in their exception text; a CRM answer quoting
    the token therefore puts it there. The credentials come through SecretStore (as
    SecretStr) and logging masks the text, traceback included."""
    import asyncio

    import requests
    from hubspot.crm.contacts import ApiException
    from simple_salesforce.exceptions import SalesforceError

    from devkit.sdk_builders.hubspot import close_apis
    from devkit.sdk_builders.hubspot import sdk_client as hubspot_sdk
    from devkit.sdk_builders.salesforce import sdk_client as salesforce_sdk
    from service.destinations.airtable.client import Credentials
    from service.destinations.airtable.sdk_client import sdk_api
    from service.models import DestinationConfig
    from service.secrets import SecretStore

    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    store = SecretStore(secrets_dir)
    sf_token, hs_token, at_token = canary("00D!sdk"), canary("pat-sdk"), canary("patSDK.")
    async with (
        SalesforceSandbox(tmp_path, token=sf_token) as sf,
        HubSpotSandbox(tmp_path, token=hs_token) as hs,
        AirtableSandbox(tmp_path, token=at_token, rate_limit=1000) as at,
    ):

        def load(destination: str, data: dict[str, str]) -> Any:
            (secrets_dir / f"{ORG}-{destination}.json").write_bytes(orjson.dumps(data))
            config = DestinationConfig.model_validate(make_config(destination, ORG))
            return store.load(config)

        sf_creds = load("salesforce", sf.credentials())
        hs_creds = load("hubspot", hs.credentials())
        at_creds = load("airtable", at.credentials())
        sf.fail(400, code="MALFORMED_QUERY", message=f"unexpected {sf_token}", times=1)
        hs.inject(400, error_body(f"token {hs_token} is invalid", "VALIDATION_ERROR"))
        at.inject(422, "INVALID_REQUEST_UNKNOWN", message=f"key {at_token} refused")

        def salesforce() -> BaseException:
            with pytest.raises(SalesforceError) as caught:
                salesforce_sdk(sf_creds, sf.ca_file).query("SELECT Id FROM Lead")
            return caught.value

        def hubspot() -> BaseException:
            api = hubspot_sdk(hs_creds, hs.ca_file, tmp_path).crm.contacts.basic_api
            try:
                with pytest.raises(ApiException) as caught:
                    api.get_page(limit=1)
            finally:
                close_apis(api)
            return caught.value

        def airtable() -> BaseException:
            api = sdk_api(Credentials.parse(at_creds), at.ca_file, 5.0)
            with pytest.raises(requests.HTTPError) as caught:
                api.table(at.base_id, "Contacts").all()
            api.session.close()
            return caught.value

        raised = {
            "salesforce": (await asyncio.to_thread(salesforce), sf_token),
            "hubspot": (await asyncio.to_thread(hubspot), hs_token),
            "airtable": (await asyncio.to_thread(airtable), at_token),
        }
    for name, (exc, token) in raised.items():
        if name != "airtable":  # pyairtable's text holds the URL, not the body
            assert token in str(exc), name  # the SDK really echoes it
        for line in logged(exc):
            assert "sdk call failed" in line and type(exc).__name__ in line
            assert token not in line and "CANARY" not in line, name
            assert len(line.splitlines()) == 1
