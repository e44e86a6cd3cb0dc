"""The projection function reports exactly the records that failed, so Lambda retries from there."""

from __future__ import annotations

import copy
from decimal import Decimal

from projections.handler import handle_stream

from orders_core.application import CommandContext, CommandService
from orders_core.domain.orders import ORDER, OrderLine, PlaceOrder, ShippingAddress
from orders_core.projections.control import ControlStore
from orders_core.projections.fanout import Projector
from orders_core.projections.live import LiveProjection
from orders_core.projections.parking import ParkingLot
from orders_core.projections.registry import registration
from orders_core.readmodels.memory import InMemoryReadStore
from orders_core.store.memory import InMemoryEventStore
from tests.support.apigw import FakeLambdaContext
from tests.support.delivery import stream_records


def test_a_poison_record_fails_alone_and_the_rest_of_the_batch_is_applied() -> None:
    # Given three orders in the log and a batch whose second record cannot be read
    events = InMemoryEventStore()
    service = CommandService(events)
    for n in range(3):
        order_id = f"00000000-0000-4000-8000-00000000000{n}"
        command = PlaceOrder(
            order_id, "alice", (OrderLine("sku-1", 1, Decimal("1.00")),), ShippingAddress("a", "b", "c", "d")
        )
        service.execute(
            ORDER,
            order_id,
            command,
            CommandContext(f"c{n}", f"k{n}", "alice", f"2026-11-26T10:00:0{n}.000000Z"),
        )
    records = stream_records([c for s in events.stream_ids() for c in events.read_commits(s)])
    poisoned = copy.deepcopy(records)
    del poisoned[1]["dynamodb"]["NewImage"]["events"]
    reads = InMemoryReadStore()
    live = LiveProjection(
        "customer_orders",
        ControlStore(InMemoryReadStore()),
        lambda name, generation: registration(name).build(reads, events, generation),
    )

    # When the batch is handled
    projector = Projector([live], ParkingLot(InMemoryReadStore()), now=lambda: "now")
    response = handle_stream({"Records": poisoned}, FakeLambdaContext(), projector)

    # Then only the poison record is reported, and the orders around it are projected
    assert response["batchItemFailures"] == [{"itemIdentifier": poisoned[1]["dynamodb"]["SequenceNumber"]}]
    views = registration("customer_orders").build(reads, events, 1)
    visible = [stream.removeprefix("order-") for stream in events.stream_ids()]
    assert [views.get(o) is not None for o in visible] == [True, False, True]  # type: ignore[attr-defined]
