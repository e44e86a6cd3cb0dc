"""Faults on the read side: the projections fail at random points, all of them fail for a while, and a
worker dies mid-batch. The real stream poller (Lambda's event source mapping, locally) retries and
resumes from its DynamoDB checkpoint; at the end every read model equals an independent fold of the log.

Runs in-process on moto (tests/conftest.py's mock): the real projection handler, the real
DynamoDB read store behind a fault-injecting wrapper, the real events table and its stream.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from projections.handler import handler_for

from orders_core.application import CommandContext, CommandService
from orders_core.domain.errors import DomainError
from orders_core.domain.inventory import PRODUCT, ReceiveStock, SetReorderLevel
from orders_core.domain.orders import (
    ORDER,
    AddItem,
    CancelOrder,
    OrderLine,
    PlaceOrder,
    ShipOrder,
    ShippingAddress,
)
from orders_core.envelope import format_timestamp
from orders_core.projections.control import ControlStore
from orders_core.projections.fanout import Projector
from orders_core.projections.live import LiveProjection
from orders_core.projections.parking import ParkingLot
from orders_core.projections.registry import NAMES, registration
from orders_core.readmodels.dynamodb import DynamoDBReadStore
from orders_core.store.dynamodb import DynamoDBEventStore
from orders_core.tables import ALL_TABLES, EVENTS, PROJECTIONS_CONTROL
from orders_local.moto_server import install_dynamodb_write_lock
from orders_local.stream_poller import (
    DynamoDBCheckpointStore,
    PollerSettings,
    StreamPoller,
    checkpoint_table_request,
)
from tests.reliability import figures
from tests.reliability.log import full_log
from tests.reliability.readmodels import Expected, differences
from tests.reliability.scale import SCALE
from tests.support.faults import FlakyReadStore, InjectedFault

SECTION = "3. Faults"
PRODUCTS = ("p-1", "p-2", "p-3", "p-4", "p-5", "p-6")
CUSTOMERS = tuple(f"customer-{n}" for n in range(7))
# Of each read-store call failing, before it runs or (for writes) after it wrote.
FAULT_PROBABILITY = 0.05
ADDRESS = ShippingAddress("1 Canal St", "Amsterdam", "1011", "NL")


class Crash(BaseException):
    """The worker process dies (as a Lambda instance that runs out of memory or time): not an error the
    function could report, so nothing is acknowledged and nothing is checkpointed."""


# -- faults -----------------------------------------------------------------------------------------


@dataclass
class FaultPlan:
    """What the read stores do wrong, shared by every store of a test; counters of what happened."""

    rng: random.Random
    probability: float = 0.0
    crash_after_writes: int | None = None  # crash right after this many more real writes
    before: int = 0  # failed before the call ran
    after: int = 0  # the call ran, then its reply was lost
    writes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def roll(self) -> bool:
        with self.lock:
            return bool(self.probability) and self.rng.random() < self.probability


class FaultyReadStore:
    """A read store that fails before or after the real call (as tests/support/faults.FlakyReadStore does),
    counting which, and that can crash the whole worker right after a write."""

    WRITES = FlakyReadStore.WRITES
    READS = FlakyReadStore.READS

    def __init__(self, inner: DynamoDBReadStore, plan: FaultPlan) -> None:
        self._inner = inner
        self._plan = plan

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if name not in self.WRITES + self.READS:
            return target
        plan = self._plan

        def call(*args: Any, **kwargs: Any) -> Any:
            if plan.roll():
                plan.before += 1
                raise InjectedFault(f"{name} failed before running")
            result = target(*args, **kwargs)
            if name in self.WRITES:
                with plan.lock:
                    plan.writes += 1
                    if plan.crash_after_writes is not None:
                        plan.crash_after_writes -= 1
                        if plan.crash_after_writes <= 0:
                            plan.crash_after_writes = None
                            raise Crash(f"worker killed right after {name}")
                if plan.roll():
                    plan.after += 1
                    raise InjectedFault(f"{name} ran, then the reply was lost")
            return result

        return call


# -- the system under test ---------------------------------------------------------------------------


@dataclass
class Delivery:
    """What one poller's handler was given."""

    invocations: int = 0
    records: int = 0
    sequence_numbers: list[int] = field(default_factory=list)


class ReadSide:
    def __init__(self, client: Any, names: dict[str, str], checkpoint_table: str, plan: FaultPlan) -> None:
        self.client = client
        self.names = names
        self.plan = plan
        self.events = DynamoDBEventStore(client, names[EVENTS.key])
        self.control = ControlStore(DynamoDBReadStore(client, names[PROJECTIONS_CONTROL.key]))
        self.checkpoints = DynamoDBCheckpointStore(client, checkpoint_table)
        self.streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        self.stream_arn = client.describe_table(TableName=names[EVENTS.key])["Table"]["LatestStreamArn"]
        self.discarded: list[dict[str, Any]] = []

    def table_of(self, name: str) -> str:
        return self.names[registration(name).table.key]

    def live(self, name: str, *, faulty: bool = True) -> LiveProjection:
        """A fresh instance of the projection function (a cold start: no state from earlier instances)."""

        def build(projection: str, generation: int) -> Any:
            store = DynamoDBReadStore(self.client, self.table_of(projection))
            chosen = FaultyReadStore(store, self.plan) if faulty else store
            return registration(projection).build(chosen, self.events, generation)

        return LiveProjection(name, self.control, build)

    def poller(self, name: str, delivery: Delivery, *, retry_delay: float = 0.0) -> StreamPoller:
        # The projector with this one read model: store faults are delivered again, never parked.
        parking = ParkingLot(DynamoDBReadStore(self.client, self.names[PROJECTIONS_CONTROL.key]))
        handle = handler_for(
            Projector([self.live(name)], parking, now=lambda: format_timestamp(datetime.now(UTC)))
        )

        def counting(event: dict[str, Any], context: Any) -> Any:
            delivery.invocations += 1
            delivery.records += len(event["Records"])
            delivery.sequence_numbers.extend(int(r["dynamodb"]["SequenceNumber"]) for r in event["Records"])
            return handle(event, context)

        return StreamPoller(
            f"projection-{name}",
            streams_client=self.streams,
            stream_arn=self.stream_arn,
            handler=counting,
            checkpoints=self.checkpoints,
            on_failure=self.discarded.append,
            # As deployed (batches, bisect on error), but retried until it succeeds (MaximumRetryAttempts -1):
            # the test is about convergence, not about what the on-failure queue receives.
            settings=PollerSettings(
                batch_size=25,
                maximum_retry_attempts=-1,
                bisect_batch_on_function_error=True,
                poll_interval_seconds=0.02,
                retry_delay_seconds=retry_delay,
            ),
        )

    def checkpoint(self, name: str) -> int | None:
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        found = self.checkpoints.get(f"projection-{name}", shards[0]["ShardId"])
        return int(found) if found is not None else None

    def view(self, order_id: str) -> Any:
        orders = registration("customer_orders").build(
            DynamoDBReadStore(self.client, self.table_of("customer_orders")), self.events, 1
        )
        return orders.get(order_id)  # type: ignore[attr-defined]

    def differences(self) -> tuple[Expected, list[str]]:
        expected = Expected.of(full_log(self.client, self.names[EVENTS.key]))
        clean = {
            name: registration(name).build(
                DynamoDBReadStore(self.client, self.table_of(name)), self.events, 1
            )
            for name in NAMES
        }

        def order(order_id: str) -> dict[str, Any] | None:
            view = clean["customer_orders"].get(order_id)  # type: ignore[attr-defined]
            return view.to_json() if view is not None else None

        found = differences(
            expected,
            order=order,
            sales=clean["sales_analytics"].get,  # type: ignore[attr-defined]
            inventory=clean["inventory"].get,  # type: ignore[attr-defined]
            summary=clean["customer_summary"].get,  # type: ignore[attr-defined]
            product_sales=clean["product_sales"].get,  # type: ignore[attr-defined]
        )
        return expected, found


class History:
    """Random commands through the real command service: orders placed over several days, items added,
    orders cancelled or shipped, stock received, reorder levels set."""

    def __init__(self, client: Any, events_table: str, rng: random.Random) -> None:
        self.service = CommandService(DynamoDBEventStore(client, events_table))
        self.rng = rng
        self.orders: list[str] = []
        self.owner: dict[str, str] = {}
        self.clock = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
        self.accepted = 0
        self.refused = 0

    def _run(self, aggregate: Any, aggregate_id: str, command: Any, actor: str) -> None:
        self.clock += timedelta(minutes=self.rng.randint(1, 90))
        command_id = str(uuid.uuid4())
        context = CommandContext(command_id, f"corr-{command_id}", actor, format_timestamp(self.clock))
        try:
            self.service.execute(aggregate, aggregate_id, command, context)
            self.accepted += 1
        except DomainError:
            self.refused += 1  # e.g. shipping a cancelled order: refused, nothing written

    def _line(self) -> OrderLine:
        price = Decimal(self.rng.choice(["0.99", "4.50", "12.50", "99.00"]))
        return OrderLine(self.rng.choice(PRODUCTS), self.rng.randint(1, 4), price)

    def place(self, count: int) -> list[str]:
        placed = []
        for _ in range(count):
            order_id = str(uuid.uuid4())
            customer = self.rng.choice(CUSTOMERS)
            lines = tuple(self._line() for _ in range(self.rng.randint(1, 3)))
            self._run(ORDER, order_id, PlaceOrder(order_id, customer, lines, ADDRESS), customer)
            self.orders.append(order_id)
            self.owner[order_id] = customer
            placed.append(order_id)
        return placed

    def mix(self, commands: int) -> None:
        for _ in range(commands):
            roll = self.rng.random()
            if roll < 0.3 or not self.orders:
                self.place(1)
            elif roll < 0.55:
                order_id = self.rng.choice(self.orders)
                owner = self.owner[order_id]
                self._run(ORDER, order_id, AddItem(order_id, owner, self._line()), owner)
            elif roll < 0.65:
                order_id = self.rng.choice(self.orders)
                self._run(
                    ORDER, order_id, CancelOrder(order_id, "operator", True, "out of stock"), "operator"
                )
            elif roll < 0.8:
                order_id = self.rng.choice(self.orders)
                self._run(ORDER, order_id, ShipOrder(order_id, f"T-{self.rng.randint(1, 9999)}"), "operator")
            elif roll < 0.93:
                product = self.rng.choice(PRODUCTS)
                self._run(PRODUCT, product, ReceiveStock(product, self.rng.randint(1, 100)), "operator")
            else:
                product = self.rng.choice(PRODUCTS)
                self._run(PRODUCT, product, SetReorderLevel(product, self.rng.randint(0, 20)), "operator")


@pytest.fixture
def read_side(dynamodb: Any) -> Iterator[Callable[[FaultPlan], ReadSide]]:
    # Pollers run on threads beside the writers: give moto DynamoDB's atomic conditional writes back.
    install_dynamodb_write_lock()
    suffix = uuid.uuid4().hex[:6]
    names = {}
    for spec in ALL_TABLES:
        names[spec.key] = f"rel-{spec.key}-{suffix}"
        dynamodb.create_table(**spec.create_table_request(names[spec.key]))
    checkpoint_table = f"rel-checkpoints-{suffix}"
    dynamodb.create_table(**checkpoint_table_request(checkpoint_table))
    yield lambda plan: ReadSide(dynamodb, names, checkpoint_table, plan)


def _history(side: ReadSide, seed: int) -> History:
    return History(side.client, side.names[EVENTS.key], random.Random(seed))


# -- the tests --------------------------------------------------------------------------------------


def test_random_faults_before_and_after_writes_end_in_the_exact_fold(
    read_side: Callable[[FaultPlan], ReadSide],
) -> None:
    plan = FaultPlan(random.Random(11), probability=FAULT_PROBABILITY)
    side = read_side(plan)
    history = _history(side, seed=11)
    history.place(SCALE.fault_orders)
    history.mix(SCALE.fault_orders * 2)

    deliveries = {name: Delivery() for name in NAMES}
    started = time.monotonic()
    for name in NAMES:
        side.poller(name, deliveries[name]).drain(timeout=600)
    seconds = time.monotonic() - started
    plan.probability = 0.0

    expected, found = side.differences()
    unique = len(set(deliveries[NAMES[0]].sequence_numbers))
    delivered = sum(d.records for d in deliveries.values())
    figures.record(
        SECTION, "random faults: commits in the log / commands refused", f"{unique} / {history.refused}"
    )
    figures.record(
        SECTION, "random faults: failures injected before / after the write", f"{plan.before} / {plan.after}"
    )
    figures.record(
        SECTION,
        "random faults: invocations / records delivered (4 projections)",
        f"{sum(d.invocations for d in deliveries.values())} / {delivered} "
        f"({delivered / (4 * unique):.1f} deliveries per record)",
    )
    figures.record(
        SECTION, "random faults: read-model rows differing from the fold", f"{len(found)} of {expected.rows}"
    )
    figures.record(SECTION, "random faults: time to converge", seconds, "s")
    assert plan.before > 0 and plan.after > 0, "the faults must really happen, before and after writes"
    assert delivered > 4 * unique, "failed batches must have been delivered again"
    assert not side.discarded
    assert not found, found


def test_with_every_projection_failing_commands_succeed_and_the_views_catch_up(
    read_side: Callable[[FaultPlan], ReadSide],
) -> None:
    plan = FaultPlan(random.Random(12))
    side = read_side(plan)
    history = _history(side, seed=12)
    history.place(5)
    deliveries = {name: Delivery() for name in NAMES}
    pollers = [side.poller(name, deliveries[name], retry_delay=0.05) for name in NAMES]
    for poller in pollers:
        poller.start()
    try:
        # Every read-store call of every projection fails from now on
        plan.probability = 1.0
        accepted_before, refused_before = history.accepted, history.refused
        during = history.place(max(10, SCALE.fault_orders // 2))
        history.mix(SCALE.fault_orders // 2)
        accepted = history.accepted - accepted_before
        tried = accepted + history.refused - refused_before
        time.sleep(1.0)
        failures_during = plan.before
        missing = [order_id for order_id in during if side.view(order_id) is None]

        # The fault goes away: the projections catch up by themselves
        plan.probability = 0.0
        outage_over = time.monotonic()
        found: list[str] = ["not compared yet"]
        while found and time.monotonic() - outage_over < 120:
            time.sleep(0.2)
            _, found = side.differences()
        caught_up = time.monotonic() - outage_over
    finally:
        for poller in pollers:
            poller.stop()

    figures.record(
        SECTION,
        "outage: commands accepted while every projection failed",
        f"{accepted} of {tried} ({tried - accepted} refused by business rules)",
    )
    figures.record(SECTION, "outage: projection failures during it", failures_during)
    figures.record(
        SECTION, "outage: orders placed during it and visible before it ended", len(during) - len(missing)
    )
    figures.record(SECTION, "outage: read models equal the fold after it ended", caught_up, "s")
    assert accepted >= len(during), "the write side does not depend on the read side"
    assert failures_during > 0
    assert missing == during, "nothing can reach a view while every write fails"
    assert not side.discarded, "retried until it succeeded: nothing may be given up"
    assert not found, found


def test_a_worker_killed_mid_batch_resumes_from_its_checkpoint(
    read_side: Callable[[FaultPlan], ReadSide],
) -> None:
    plan = FaultPlan(random.Random(13))
    side = read_side(plan)
    history = _history(side, seed=13)
    rng = random.Random(13)
    crashes = written_before_crash = redelivered = behind_checkpoint = 0
    for round_number in range(SCALE.crash_rounds):
        # New commands since the last round, with 12 new orders: every projection has writes to do
        history.place(12)
        history.mix(8)
        victim = NAMES[round_number % len(NAMES)]
        for name in NAMES:
            delivery = Delivery()
            if name != victim:
                side.poller(name, delivery).drain(timeout=300)
                continue
            # The worker dies right after its k-th write, in the middle of a batch (or right after
            # it: a summary read model writes a whole batch in one or two transactions, ADR 12)
            plan.crash_after_writes = rng.randint(1, 10) if victim == "customer_orders" else 1
            writes_before = plan.writes
            with pytest.raises(Crash):
                side.poller(name, delivery).drain(timeout=300)
            crashes += 1
            written_before_crash += plan.writes - writes_before
            unacknowledged = set(delivery.sequence_numbers[-25:])  # at most the batch it died in
            checkpoint = side.checkpoint(name)

            # A new worker with the same name and checkpoint store: a new Lambda instance
            restarted = Delivery()
            side.poller(name, restarted).drain(timeout=300)
            first_again = restarted.sequence_numbers[0] if restarted.sequence_numbers else None
            assert first_again is not None, "the records of the batch that died must be delivered again"
            assert checkpoint is None or first_again > checkpoint, "resumes after its checkpoint, not before"
            behind_checkpoint += sum(
                1 for s in restarted.sequence_numbers if checkpoint is not None and s <= checkpoint
            )
            redelivered += len(unacknowledged & set(restarted.sequence_numbers))

    expected, found = side.differences()
    figures.record(SECTION, "crash/restart: workers killed mid-batch", crashes)
    figures.record(SECTION, "crash/restart: writes done by the dying batches", written_before_crash)
    figures.record(SECTION, "crash/restart: records delivered again after restart", redelivered)
    figures.record(
        SECTION, "crash/restart: records at or before the checkpoint delivered again", behind_checkpoint
    )
    figures.record(
        SECTION, "crash/restart: read-model rows differing from the fold", f"{len(found)} of {expected.rows}"
    )
    assert crashes == SCALE.crash_rounds
    assert redelivered > 0 and behind_checkpoint == 0
    assert not side.discarded
    assert not found, found
