"""The event bus on Amazon EventBridge: PutEvents, with its per-entry answers.

The limits are checked before the request is sent (check_request): EventBridge would refuse the
request, and moto, which the local run and the tests use, checks the number of entries but not
their size. A request that fails as a whole (throttled after the SDK's own retries, out of reach,
refused) raises EventBusUnavailable; entries that fail on their own come back by position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from orders_core.integration.events import BusEntry
from orders_core.integration.port import EntryFailure, EventBusUnavailable, check_request

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef


class EventBridgeBus:
    def __init__(self, client: EventBridgeClient, bus_name: str) -> None:
        self._client = client
        self.bus_name = bus_name

    def publish(self, entries: Sequence[BusEntry]) -> list[EntryFailure]:
        check_request(entries)
        request: list[PutEventsRequestEntryTypeDef] = [
            {
                "EventBusName": self.bus_name,
                "Source": entry.source,
                "DetailType": entry.detail_type,
                "Detail": entry.detail,
                "Time": entry.time,
            }
            for entry in entries
        ]
        try:
            reply = self._client.put_events(Entries=request)
        except (ClientError, BotoCoreError) as exc:
            raise EventBusUnavailable(f"PutEvents to {self.bus_name} failed: {exc}") from exc
        if not reply.get("FailedEntryCount"):
            return []
        # The answer has one entry per request entry, in the same order: an EventId for each one
        # published, an ErrorCode for each one that was not.
        return [
            EntryFailure(position, str(answer["ErrorCode"]), str(answer.get("ErrorMessage", "")))
            for position, answer in enumerate(reply.get("Entries", []))
            if answer.get("ErrorCode")
        ]
