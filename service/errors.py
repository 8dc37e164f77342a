"""Every error the service raises on purpose, and what the pipeline does with it.

    DestinationsError
    ├── SettingsError            bad environment -> exit code 2, one line naming the setting
    ├── InvalidEvent             bad input event -> DLQ (code, stage), partition keeps moving
    ├── ConfigRejected           bad destination config -> counted, previous config stays
    └── DeliveryError            a write to a destination went wrong (code, http_status)
        ├── PermanentError       -> status `failed` at once (retryable: false)
        │   ├── AuthFailed            401 / INVALID_SESSION_ID; re-read secret on change
        │   ├── Forbidden             403 without a rate-limit meaning
        │   ├── CredentialsUnavailable  secret file missing or unreadable
        │   └── TlsError              certificate not trusted: waiting will not fix it
        └── TransientError       -> retried with backoff, then `failed`
            └── RateLimited      backpressure: carries `retry_after` seconds
                └── QuotaExhausted   daily quota: destination unavailable until reset,
                                     waiting does not spend attempts

Messages must never hold a secret: destinations pass remote text through
`service.redact.redact` before building one.
"""

from __future__ import annotations

from service.models import ErrorInfo


class DestinationsError(Exception):
    """Root of the service's own errors."""


class SettingsError(DestinationsError):
    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"invalid setting {setting}: {problem}")
        self.setting = setting


class InvalidEvent(DestinationsError):
    """`stage` is `deserialize` (bytes or JSON) or `validate` (schema)."""

    def __init__(self, code: str, message: str, stage: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.stage = stage


class ConfigRejected(DestinationsError):
    """`reason` is a snake_case word, used as the metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class DeliveryError(DestinationsError):
    retryable = False
    code = "delivery_error"

    def __init__(
        self, message: str, *, code: str | None = None, http_status: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        if code is not None:
            self.code = code

    def info(self) -> ErrorInfo:
        return ErrorInfo(
            code=self.code,
            message=self.message,
            retryable=self.retryable,
            http_status=self.http_status,
        )


class PermanentError(DeliveryError):
    code = "rejected"


class AuthFailed(PermanentError):
    code = "auth_failed"


class Forbidden(PermanentError):
    code = "forbidden"


class CredentialsUnavailable(PermanentError):
    code = "credentials_unavailable"


class TlsError(PermanentError):
    """The destination's certificate failed verification (unknown CA, wrong host,
    expired). Trust comes only from the system and DESTINATION_CA_FILE."""

    code = "tls_error"


class TransientError(DeliveryError):
    retryable = True
    code = "transient_error"


MAX_WAIT_S = 3600.0  # no CRM header may push work further out than this at once


def clamp_wait(seconds: float) -> float:
    """A wait a CRM asked for, made safe to add to a clock: NaN -> 0, and at most
    MAX_WAIT_S (an `inf` or `1e12` Retry-After once overflowed a datetime)."""
    if seconds != seconds:  # NaN
        return 0.0
    return min(MAX_WAIT_S, max(0.0, seconds))


class RateLimited(TransientError):
    code = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        code: str | None = None,
        http_status: int | None = 429,
    ) -> None:
        super().__init__(message, code=code, http_status=http_status)
        self.retry_after = clamp_wait(retry_after)


class QuotaExhausted(RateLimited):
    code = "quota_exhausted"
