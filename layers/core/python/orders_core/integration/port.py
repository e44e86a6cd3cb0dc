"""The event bus as the publisher sees it: put a request of entries, learn which ones failed.

PutEvents answers per entry: a request can succeed for some entries and fail for others
(FailedEntryCount, and an ErrorCode per failed entry), and the failed ones must be sent again.
Every bus here reports such failures the same way, by position in the request, and refuses a
request over the documented limits before sending anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from orders_core.integration.events import MAX_ENTRIES_PER_REQUEST, MAX_REQUEST_BYTES, BusEntry


class EventBusError(Exception):
    """Base of the event bus's errors."""


class EventBusUnavailable(EventBusError):
    """The request as a whole failed (throttled, out of reach, refused): nothing was published."""


class RequestTooLarge(EventBusError, ValueError):
    """More entries or bytes than one PutEvents request takes; nothing was sent."""


@dataclass(frozen=True)
class EntryFailure:
    """An entry of a request that the bus did not take; the others were published."""

    position: int  # in the request
    error_code: str
    message: str = ""


class EventBus(Protocol):
    def publish(self, entries: Sequence[BusEntry]) -> list[EntryFailure]:
        """Put one request of entries; the ones that failed, by position (empty: all published).

        Raises RequestTooLarge (nothing sent) for a request over the limits, and
        EventBusUnavailable when the request as a whole failed.
        """
        ...


def check_request(entries: Sequence[BusEntry]) -> None:
    """Refuse a request that PutEvents would refuse for its number of entries or its size."""
    if not entries:
        raise RequestTooLarge("a PutEvents request needs at least one entry")
    if len(entries) > MAX_ENTRIES_PER_REQUEST:
        raise RequestTooLarge(
            f"{len(entries)} entries in one request: PutEvents takes at most {MAX_ENTRIES_PER_REQUEST}"
        )
    size = sum(entry.size for entry in entries)
    if size > MAX_REQUEST_BYTES:
        raise RequestTooLarge(f"a request of {size} bytes: PutEvents takes at most {MAX_REQUEST_BYTES}")
