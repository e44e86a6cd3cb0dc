"""A rebuild run driven step by step, as the state machine drives it, on in-memory stores (or on
any given ones): for tests that call a step again, end a run early, or race two steps."""

from __future__ import annotations

import copy
import gzip
import io
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from orders_core.application import CommandService
from orders_core.domain.orders import ORDER
from orders_core.envelope import Commit
from orders_core.projections.control import ControlStore, ProjectionControl
from orders_core.projections.registry import registration
from orders_core.readmodels.memory import InMemoryReadStore
from orders_core.readmodels.port import ReadStore
from orders_core.rebuild.objects import ObjectStore
from orders_core.rebuild.runs import RebuildRun, RunStore
from orders_core.rebuild.steps import RebuildSteps
from orders_core.store.codec import commit_to_item
from orders_core.store.memory import InMemoryEventStore
from orders_core.store.port import EventStore
from tests.support.orders import context, new_order_id, place_order

PROJECTION = "customer_orders"
NOW = "2026-11-29T10:00:00.000000Z"
ACCOUNT_TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/events"


class InMemoryObjectStore:
    """The ObjectStore port over a dict: keys listed in order, as S3 lists them."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, key: str, body: bytes) -> None:
        with self._lock:
            self.objects[key] = body

    def get(self, key: str) -> bytes:
        with self._lock:
            return self.objects[key]

    def open(self, key: str) -> IO[bytes]:
        return io.BytesIO(self.get(key))

    def list(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(key for key in self.objects if key.startswith(prefix))

    def delete_prefix(self, prefix: str) -> int:
        with self._lock:
            doomed = [key for key in self.objects if key.startswith(prefix)]
            for key in doomed:
                del self.objects[key]
        return len(doomed)


def export_file(commits: list[Commit]) -> bytes:
    """Commits as one DynamoDB export data file (gzip DynamoDB JSON lines)."""
    lines = [json.dumps({"Item": commit_to_item(commit)}) for commit in commits]
    return gzip.compress("\n".join(lines).encode())


@dataclass
class RebuildWorld:
    """One read model (customer orders) with rows at generation 1, and a rebuild of it."""

    events: EventStore = field(default_factory=InMemoryEventStore)
    control_store: ReadStore = field(default_factory=InMemoryReadStore)
    table: ReadStore = field(default_factory=InMemoryReadStore)
    objects: ObjectStore = field(default_factory=InMemoryObjectStore)
    buckets: int = 2
    retire_pages_per_call: int = 1
    shuffle_buffer_bytes: int = 64 * 1024 * 1024
    rebuild_id: str = field(default_factory=lambda: f"20261129T100000-customer-orders-{uuid.uuid4().hex[:4]}")

    def __post_init__(self) -> None:
        self.streams: list[str] = []
        self.control = ControlStore(self.control_store)
        self.runs = RunStore(self.control_store)
        self.steps = self.make_steps()

    def make_steps(self, control: ControlStore | None = None) -> RebuildSteps:
        return RebuildSteps(
            control=control or self.control,
            runs=self.runs,
            objects=self.objects,
            events=self.events,
            projection_for=self.projection,
            read_store_for=lambda _name: self.table,
            now=lambda: NOW,
            buckets=self.buckets,
            retire_pages_per_call=self.retire_pages_per_call,
            shuffle_buffer_bytes=self.shuffle_buffer_bytes,
        )

    def projection(self, name: str, generation: int) -> Any:
        return registration(name).build(self.table, self.events, generation)

    # -- the world before the rebuild -------------------------------------------------------------

    def place_orders(self, count: int = 5) -> list[str]:
        """Orders placed and projected into the active generation (1), as the live path does."""
        service = CommandService(self.events)
        orders = [new_order_id() for _ in range(count)]
        for n, order_id in enumerate(orders):
            service.execute(ORDER, order_id, place_order(order_id, f"customer-{n % 2}", lines=2), context())
        self.streams += [ORDER.stream_id(order_id) for order_id in orders]
        assert not self.projection(PROJECTION, 1).process(self.commits())
        return orders

    def commits(self) -> list[Commit]:
        return [commit for stream in self.streams for commit in self.events.read_commits(stream)]

    def start(self, rebuild_id: str | None = None) -> str:
        rebuild_id = rebuild_id or self.rebuild_id
        self.runs.save_run(RebuildRun(rebuild_id=rebuild_id, projection=PROJECTION, started_at=NOW))
        return rebuild_id

    # -- what the workflow does between steps ------------------------------------------------------

    def export(self, plan: dict[str, Any], *, folder: str | None = None) -> str:
        """DynamoDB's export of the events table under the plan's prefix; answers its ARN. The
        folder is the export id, as AWS names it, unless `folder` names it otherwise (as moto does)."""
        export_id = f"{uuid.uuid4().int % 10**14:014d}-{uuid.uuid4().hex[:8]}"
        base = f"{plan['export_prefix']}/AWSDynamoDB/{folder or export_id}"
        self.objects.put(f"{base}/manifest-summary.json", b"{}")
        self.objects.put(f"{base}/data/{uuid.uuid4().hex}.json.gz", export_file(self.commits()))
        return f"{ACCOUNT_TABLE}/export/{export_id}"

    def deliver_marker(self, rebuild_id: str | None = None) -> None:
        """The live projection reached the run's marker."""
        self.control.record_marker(PROJECTION, rebuild_id or self.rebuild_id)

    def run_until(self, last: str, rebuild_id: str | None = None) -> dict[str, Any]:
        """Run the steps in the workflow's order up to and including `last`; answers the plan."""
        rebuild_id = rebuild_id or self.rebuild_id
        order = ["begin", "export_done", "shuffle", "apply_bucket", "verify", "catch_up", "switch"]
        plan = self.steps.begin(rebuild_id)
        for step in order[1 : order.index(last) + 1]:
            if step == "export_done":
                self.steps.export_done(rebuild_id, self.export(plan))
            elif step == "shuffle":
                for key in self.objects.list(plan["export_prefix"]):
                    self.steps.shuffle(rebuild_id, key)
            elif step == "apply_bucket":
                for bucket in plan["buckets"]:
                    self.steps.apply_bucket(rebuild_id, bucket)
            elif step == "verify":
                self.steps.verify(rebuild_id)
            elif step == "catch_up":
                self.deliver_marker(rebuild_id)
                self.steps.catch_up(rebuild_id)
            elif step == "switch":
                self.steps.switch(rebuild_id)
        return plan

    def retire_all(self, rebuild_id: str | None = None) -> list[dict[str, Any]]:
        rebuild_id = rebuild_id or self.rebuild_id
        answers = [self.steps.retire(rebuild_id)]
        while answers[-1]["more"]:
            assert len(answers) < 1_000, "retiring never ends"
            answers.append(self.steps.retire(rebuild_id, answers[-1]["cursor"]))
        return answers

    # -- what a test looks at ----------------------------------------------------------------------

    def run(self, rebuild_id: str | None = None) -> RebuildRun:
        found = self.runs.run(rebuild_id or self.rebuild_id)
        assert found is not None
        return found

    def claim(self) -> ProjectionControl:
        return self.control.control(PROJECTION)

    def rows(self, generation: int) -> dict[tuple[str, str], Any]:
        """Every row of one generation of the read model (read through a scan of the fake)."""
        assert isinstance(self.table, InMemoryReadStore), "rows() reads the in-memory fake"
        everything: dict[tuple[str, str], Any] = self.table._rows  # the fake has no scan of its own
        return copy.deepcopy({k: v for k, v in everything.items() if k[0].startswith(f"{generation}#")})

    def state(self) -> tuple[Any, ...]:
        """Everything a step may change: the run, the control row, the rows, the objects."""
        assert isinstance(self.objects, InMemoryObjectStore)
        assert isinstance(self.table, InMemoryReadStore)
        return (
            self.runs.runs(),
            self.claim(),
            copy.deepcopy(self.table._rows),
            dict(self.objects.objects),
        )


def twice(call: Callable[[], Any], world: RebuildWorld) -> Any:
    """Call a step, then again as Step Functions retries it: the same answer, nothing changed."""
    first = call()
    after_first = world.state()
    again = call()
    assert again == first, f"the retry answered {again!r}, the first call {first!r}"
    assert world.state() == after_first, "the retry changed something"
    return first
