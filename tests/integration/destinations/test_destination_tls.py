"""TLS to destinations (issue 13): verification is always on, the only extra trust is
DESTINATION_CA_FILE, and a certificate from an unknown CA fails at once with
`tls_error` (not retried: waiting does not make a certificate trusted)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from devkit.factories import make_config, make_event
from devkit.harness import ServiceHarness
from devkit.sandboxes.airtable import AirtableSandbox
from devkit.sandboxes.salesforce import SalesforceSandbox
from service.destinations.airtable.destination import AirtableDestination
from service.destinations.base import Destination, DestinationContext
from service.destinations.http import ssl_context, tls_message
from service.destinations.salesforce.destination import SalesforceDestination


def test_verification_is_always_on(tmp_path: Path) -> None:
    ca_file = tmp_path / "extra-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))
    for context in (ssl_context(None), ssl_context(ca_file)):
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname is True
    system = len(ssl_context(None).get_ca_certs())
    assert len(ssl_context(ca_file).get_ca_certs()) == system + 1  # added, not replacing


@pytest.mark.slow
async def test_an_unknown_ca_fails_at_once_with_tls_error(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    tls = tmp_path / "tls"
    tls.mkdir()
    stranger = tmp_path / "some-other-ca.pem"  # trusted instead of the sandboxes' CA
    trustme.CA().cert_pem.write_to_path(str(stranger))
    async with SalesforceSandbox(tls) as sf, AirtableSandbox(tls, rate_limit=1000) as at:
        destinations: dict[str, Destination] = {}
        h = ServiceHarness(
            kafka_bootstrap,
            tmp_path,
            env={"DESTINATION_CA_FILE": str(stranger), "MAX_ATTEMPTS": "8"},
            destinations=destinations,
        )
        destinations["salesforce"] = SalesforceDestination(
            DestinationContext(h.settings, h.metrics)
        )
        ctx = DestinationContext(h.settings, h.metrics, {"airtable": {"client": "sdk"}})
        destinations["airtable"] = AirtableDestination(ctx)  # requests/pyairtable path
        async with h:
            h.write_secret("org_1-salesforce", sf.credentials())
            h.write_secret("org_1-airtable", at.credentials())
            await h.put_config(make_config("salesforce"))
            await h.put_config(make_config("airtable"))
            await h.send_event(make_event())
            statuses = await h.wait_statuses(2, timeout=30)
            retries = h.metric("retries_total", destination="salesforce")
            tls_requests = h.metric(
                "destination_requests_total", destination="salesforce", outcome="tls_error"
            )
    assert {s["destination"] for s in statuses} == {"salesforce", "airtable"}
    for status in statuses:
        assert status["status"] == "failed" and status["attempts"] == 1, status
        error = status["error"]
        assert (error["code"], error["retryable"], error["http_status"]) == (
            "tls_error",
            False,
            None,
        )
        assert "DESTINATION_CA_FILE" in error["message"]
    assert "certificate verify failed" in next(
        s["error"]["message"] for s in statuses if s["destination"] == "salesforce"
    )
    assert [s for s in h.statuses if s["status"] == "retrying"] == []
    assert retries == 0 and tls_requests == 1
    assert sf.calls == [] and at.hits == []  # no request got past the handshake


def test_the_tls_message_names_the_cause_and_never_raises() -> None:
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "self-signed certificate"
    wrapped = OSError("max retries")
    wrapped.__cause__ = verify
    assert "certificate verify failed: self-signed certificate" in tls_message("hubspot", wrapped)
    assert tls_message("hubspot", ssl.SSLError("wrong version")).startswith("hubspot TLS failed")
    looped = ValueError()
    looped.__context__ = looped  # a cause chain that never ends
    assert "ValueError" in tls_message("airtable", looped)
