"""HTTP plumbing shared by the destinations: TLS trust, one pooled session,
request accounting and the generic status-code -> error mapping.
"""

from __future__ import annotations

import asyncio
import math
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from time import time
from typing import Any

import aiohttp
import orjson

from service.errors import (
    AuthFailed,
    DeliveryError,
    Forbidden,
    PermanentError,
    RateLimited,
    TlsError,
    TransientError,
)
from service.metrics import Metrics
from service.redact import redact


def ssl_context(extra_ca_file: Path | None) -> ssl.SSLContext:
    """System trust plus `DESTINATION_CA_FILE`, the way tests trust their sandboxes.
    Verification (chain and host name) is always on: there is no setting to skip it."""
    context = ssl.create_default_context()
    if extra_ca_file is not None:
        context.load_verify_locations(cafile=str(extra_ca_file))
    return context


def new_session(
    extra_ca_file: Path | None, timeout_s: float, limit: int = 100
) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(ssl=ssl_context(extra_ca_file), limit=limit)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        json_serialize=lambda obj: orjson.dumps(obj).decode(),
    )


MAX_WAIT_S = 3600.0  # the longest any CRM header may make us wait: an hour


def bounded_seconds(value: float, default: float, cap: float = MAX_WAIT_S) -> float:
    """A wait a CRM asked for, made safe for sleeps and datetimes: `default` when it
    is not a finite number, 0 when negative, at most `cap`."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return default
    try:
        seconds = float(value)
    except OverflowError:  # an int too big for a float
        return cap if value > 0 else 0.0
    if not math.isfinite(seconds):
        return default
    return min(cap, max(0.0, seconds))


def header_number(headers: Mapping[str, str], name: str, *, limit: int = 10**12) -> int | None:
    """A non-negative integer header (ASCII digits only, at most `limit`); None otherwise."""
    raw = headers.get(name)
    if not isinstance(raw, str):
        return None
    raw = raw.strip()
    if not raw or len(raw) > 15 or not (raw.isascii() and raw.isdigit()):
        return None
    number = int(raw)
    return number if number <= limit else None


_DELAY_SECONDS = re.compile(r"\s*\d{1,40}(\.\d{1,6})?\s*")  # RFC 9110: 1*DIGIT (and 1.5)


def retry_after_seconds(headers: Mapping[str, str], default: float) -> float:
    """`Retry-After` as delta-seconds or an HTTP date, within 0..MAX_WAIT_S; `default`
    when absent or unreadable (inf, nan, 1e12, -5, garbage: none is delay-seconds)."""
    raw = headers.get("Retry-After")
    if not raw or not isinstance(raw, str) or len(raw) > 100:
        return default
    if _DELAY_SECONDS.fullmatch(raw):
        return bounded_seconds(float(raw), default)
    try:
        when = parsedate_to_datetime(raw)
        return bounded_seconds(when.timestamp() - time(), default)
    except (TypeError, ValueError, OverflowError, IndexError):
        return default


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: Any  # parsed JSON, or the text when the body is not JSON

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def outcome_label(status: int) -> str:
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "ok"


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    destination: str,
    metrics: Metrics,
    headers: Mapping[str, str] | None = None,
    json: Any = None,
    params: Mapping[str, str] | None = None,
) -> Response:
    """One request; network failures become TransientError, every try is counted."""
    data = orjson.dumps(json) if json is not None else None
    merged = {"Content-Type": "application/json", **(headers or {})}
    requests = metrics.destination_requests
    try:
        async with session.request(method, url, headers=merged, data=data, params=params) as resp:
            raw = await resp.read()
            requests.labels(destination, outcome_label(resp.status)).inc()
            if resp.status == 429:
                metrics.rate_limited.labels(destination).inc()
            try:
                body: Any = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                if 200 <= resp.status < 300:  # an answer we cannot read is never "no record"
                    raise TransientError(
                        f"{destination} answered HTTP {resp.status} with a body that is not JSON",
                        code="bad_response",
                        http_status=resp.status,
                    ) from None
                body = raw.decode("utf-8", "replace")
            return Response(resp.status, resp.headers, body)
    except TimeoutError:
        requests.labels(destination, "timeout").inc()
        raise TransientError(f"{destination} request timed out", code="timeout") from None
    except aiohttp.ClientSSLError as exc:  # not retried: an untrusted peer stays untrusted
        requests.labels(destination, "tls_error").inc()
        raise TlsError(tls_message(destination, exc)) from None
    except aiohttp.ClientError as exc:
        requests.labels(destination, "connection_error").inc()
        message = redact(f"{destination} connection failed: {type(exc).__name__}")
        raise TransientError(message, code="connection_error") from None
    except asyncio.CancelledError:
        requests.labels(destination, "cancelled").inc()
        raise


def tls_message(destination: str, exc: BaseException) -> str:
    """`salesforce TLS failed: certificate verify failed: ...`; never the request."""
    cause: object = exc
    for _ in range(6):  # aiohttp, or requests -> urllib3 -> ssl: find the ssl error
        verify_message = getattr(cause, "verify_message", None)  # ssl.SSLCertVerificationError
        if isinstance(verify_message, str):
            detail = f"certificate verify failed: {verify_message}"
            break
        if isinstance(cause, BaseException):
            cause = (
                getattr(cause, "certificate_error", None)
                or getattr(cause, "reason", None)
                or cause.__cause__
                or cause.__context__
                or (cause.args[0] if cause.args else None)
            )
    else:
        detail = type(exc).__name__
    return redact(f"{destination} TLS failed ({detail}); trust comes from DESTINATION_CA_FILE")


def error_for_status(
    status: int, message: str, *, code: str | None = None, retry_after: float = 1.0
) -> DeliveryError:
    """Generic mapping; destinations refine it with their own error codes first."""
    message = redact(message)[:1000]
    if status == 401:
        return AuthFailed(message, http_status=status)
    if status == 403:
        return Forbidden(message, code=code, http_status=status)
    if status == 429:
        return RateLimited(message, retry_after=retry_after, code=code)
    if status >= 500 or status == 408:
        return TransientError(message, code=code or "server_error", http_status=status)
    return PermanentError(message, code=code or "rejected", http_status=status)
