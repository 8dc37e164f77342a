"""What the destinations do with a CRM answer they cannot read (contract §6).

Parsers raise `unreadable(...)` for every shape they do not expect (null, a
wrong type, a missing key, a list of the wrong length): a `TransientError` with
code `bad_response`, retried by the pipeline, never taken as "no record".

`contained` is the boundary around a destination's `write` and its lookups: an
exception a parser did not foresee (TypeError, KeyError, ...) becomes that same
`bad_response` and is logged once, with the destination's name and where it
was raised, never the answer's text (it may echo a secret). Cancellation and
DeliveryErrors pass through untouched.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from service.errors import DeliveryError, TransientError

BAD_RESPONSE = "bad_response"
T = TypeVar("T")
log = logging.getLogger(__name__)


def unreadable(destination: str, what: str) -> TransientError:
    """`salesforce answered a save result without success: ...`"""
    return TransientError(f"{destination} answered {what}", code=BAD_RESPONSE)


def text_of(value: Any) -> str:
    """A value an answer holds, as text for a message: only strings and numbers."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{Path(last.filename).name}:{last.lineno}"


def converted(destination: str, exc: Exception) -> TransientError:
    log.error(
        "%s: an answer could not be read (%s at %s); retried as bad_response",
        destination,
        type(exc).__name__,
        _where(exc),
    )
    return unreadable(destination, f"something this service cannot read ({type(exc).__name__})")


async def contained(destination: str, call: Awaitable[T]) -> T:
    """`await call`; anything but a DeliveryError or a cancellation -> bad_response."""
    try:
        return await call
    except DeliveryError:
        raise
    except Exception as exc:  # BaseExceptions (CancelledError, KeyboardInterrupt) pass
        raise converted(destination, exc) from None


def one_per_item(destination: str, outcomes: Sequence[Any], items: int) -> None:
    """The destination contract: one Outcome per item, in order."""
    if len(outcomes) != items:
        raise unreadable(destination, f"{len(outcomes)} results for {items} deliveries")
