"""The stream readers besides the projector: the live notifier on the read models' streams
(live_feed, ADR 14) and the integration publisher on the events stream (integration_events,
ADR 15), in one helper process of their own when `orders serve` runs its functions as instances.

On AWS each is a function of its own; locally, in the main process they would take moto's
interpreter lock from the requests moto serves to everyone else (docs/performance.md section 5).
When idle they poll less often than the projector (a push or a publication a second after the
change is soon enough; the projector's lag is what `min_version` waits on).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from orders_core import composition
from orders_core.tables import EVENTS
from orders_local import integration_events, live_feed
from orders_local.helper_processes import READY, Helper, connect_to_main, send_or_exit
from orders_local.integration_events import LocalBus, LocalIntegrationEvents
from orders_local.live_feed import LiveFeed

logger = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 60.0
IDLE_POLL_MAX_SECONDS = 1.0
LIVE_SETTINGS = dataclasses.replace(live_feed.SETTINGS, idle_poll_max_seconds=IDLE_POLL_MAX_SECONDS)
PUBLISHER_SETTINGS = dataclasses.replace(
    integration_events.SETTINGS, idle_poll_max_seconds=IDLE_POLL_MAX_SECONDS
)


@dataclasses.dataclass(frozen=True)
class ReaderPlan:
    """What to run, as the main process passes it to the helper (JSON on its command line)."""

    endpoint_url: str | None
    table_names: Mapping[str, str]
    table_prefix: str
    live: bool
    integration: bool


class StreamReaders:
    def __init__(self, plan: ReaderPlan, *, own_process: bool) -> None:
        self.plan = plan
        self._own_process = own_process
        self.live_feed: LiveFeed | None = None  # in this process
        self.integration_events: LocalIntegrationEvents | None = None
        self.process: Helper | None = None  # or in their own
        self.bus: LocalBus | None = None

    def start(self) -> None:
        if self._own_process:
            self.process = Helper("the stream readers", __name__, json.dumps(dataclasses.asdict(self.plan)))
            self.process.wait_ready(START_TIMEOUT_SECONDS)
            if self.process.connection.poll(START_TIMEOUT_SECONDS):
                self.bus = self.process.connection.recv()
            return
        self.live_feed, self.integration_events = _start(self.plan)
        self.bus = self.integration_events.bus if self.integration_events is not None else None

    def stop(self) -> None:
        if self.integration_events is not None:
            self.integration_events.stop()
            self.integration_events = None
        if self.live_feed is not None:
            self.live_feed.stop()
            self.live_feed = None
        if self.process is not None:
            self.process.stop(timeout=15.0)
            self.process = None


def _start(plan: ReaderPlan) -> tuple[LiveFeed | None, LocalIntegrationEvents | None]:
    feed = events = None
    if plan.live:
        feed = LiveFeed(
            endpoint_url=plan.endpoint_url,
            table_names=plan.table_names,
            checkpoint_table=f"{plan.table_prefix}-checkpoints",
            failure_queue=f"{plan.table_prefix}-live-failures",
            settings=LIVE_SETTINGS,
        )
        feed.start()
    if plan.integration:
        events = LocalIntegrationEvents(
            endpoint_url=plan.endpoint_url,
            events_table=plan.table_names[EVENTS.key],
            table_prefix=plan.table_prefix,
            settings=PUBLISHER_SETTINGS,
        )
        events.start()
    return feed, events


def main(argv: Sequence[str]) -> int:
    """The helper: start the readers, tell the main process where the bus is, stop at line's end."""
    connection, (plan_json,) = connect_to_main(argv)
    plan_data: dict[str, Any] = json.loads(plan_json)
    plan = ReaderPlan(**plan_data)
    composition.use(composition.Root(composition.Settings.from_environ()))
    feed, events = _start(plan)
    send_or_exit(connection, READY)
    send_or_exit(connection, events.bus if events is not None else None)
    try:
        while True:
            try:
                connection.recv()
            except (EOFError, OSError):
                return 0  # the main process closed the line: stopping, or gone
    finally:
        if events is not None:
            events.stop()
        if feed is not None:
            feed.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
