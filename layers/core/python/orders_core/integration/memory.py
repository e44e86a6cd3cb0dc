"""An in-memory event bus for tests: it keeps what was published and can be told to fail.

It holds EventBridge's rules that matter to a publisher: the request limits (check_request), and a
per-entry MalformedDetail for a Detail that is not a JSON object, reported by position while the
rest of the request is published.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence

from orders_core.integration.events import BusEntry
from orders_core.integration.port import EntryFailure, EventBusUnavailable, check_request

# Given an entry, the error code to fail it with this time, or None to publish it.
EntryFault = Callable[[BusEntry], str | None]


class InMemoryEventBus:
    def __init__(self) -> None:
        self.published: list[BusEntry] = []
        self.requests: list[int] = []  # the number of entries of every request received
        # Requests to fail as a whole before the next one goes through (a throttled or unreachable bus).
        self.outages = 0
        self.entry_fault: EntryFault | None = None
        self._lock = threading.Lock()

    def publish(self, entries: Sequence[BusEntry]) -> list[EntryFailure]:
        check_request(entries)
        with self._lock:
            self.requests.append(len(entries))
            if self.outages > 0:
                self.outages -= 1
                raise EventBusUnavailable("the in-memory bus is out of reach (an outage the test asked for)")
            failures = []
            for position, entry in enumerate(entries):
                code = _malformed(entry) or (self.entry_fault(entry) if self.entry_fault else None)
                if code is None:
                    self.published.append(entry)
                else:
                    failures.append(EntryFailure(position, code, f"{code} (in-memory bus)"))
            return failures


def _malformed(entry: BusEntry) -> str | None:
    try:
        detail = json.loads(entry.detail)
    except ValueError:
        return "MalformedDetail"
    return None if isinstance(detail, dict) else "MalformedDetail"
