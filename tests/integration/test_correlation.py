"""X-Correlation-Id flows into the events, every log line and the metrics of a command, and into the
log lines and metrics of the projections that apply its events; causation ids name the command."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from projections import handler as projection_function

from command_api import handler as commands
from orders_core import composition
from orders_core.application import CommandService
from orders_core.domain.orders import ORDER
from orders_core.envelope import Commit
from orders_core.readmodels.memory import InMemoryReadStore
from orders_core.snapshots.memory import InMemorySnapshotStore
from orders_core.snapshots.port import Snapshot, SnapshotStoreError
from orders_core.store.memory import InMemoryEventStore
from orders_core.tables import ALL_TABLES
from query_api import handler as queries
from tests.support.apigw import FakeLambdaContext, http_event
from tests.support.delivery import stream_records
from tests.support.logs import emf_blobs, json_lines, metric_names
from tests.support.orders import context, new_order_id, place_order

ITEM = {"product_id": "sku-1", "quantity": 2, "unit_price": "12.50"}
ADDRESS = {"line1": "1 Canal St", "city": "Amsterdam", "postal_code": "1011", "country": "NL"}
BODY = {"items": [ITEM], "shipping_address": ADDRESS}


class SnapshotsThatFail(InMemorySnapshotStore):
    def save(self, snapshot: Snapshot) -> None:
        raise SnapshotStoreError("throttled")


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemoryEventStore]:
    for spec in ALL_TABLES:
        monkeypatch.setenv(spec.env_var, f"unused-{spec.key}")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "OrdersTest")
    store = InMemoryEventStore()
    # Snapshots at every event, all failing: the service's own warning must carry the id too.
    reads = InMemoryReadStore()
    composition.use(
        composition.Root(
            composition.Settings(snapshot_every={"order": 1}),
            event_store=store,
            snapshot_store=SnapshotsThatFail(),
            read_store_for=lambda spec: reads,
            log=commands.logger,
        )
    )
    yield store
    composition.use(None)


def command(method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    response = commands.lambda_handler(http_event(method, path, **kwargs), FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_every_log_line_of_a_command_carries_its_correlation_id(events: InMemoryEventStore) -> None:
    with json_lines(commands.logger) as lines:
        status, body = command("POST", "/orders", body=BODY, headers={"X-Correlation-Id": "trace-42"})

    assert status == 201
    messages = [line["message"] for line in lines]
    assert "snapshot not saved" in messages  # written by the command service, deep inside the request
    assert "request handled" in messages
    assert {line.get("correlation_id") for line in lines} == {"trace-42"}
    handled = next(line for line in lines if line["message"] == "request handled")
    assert (handled["route"], handled["status"]) == ("POST /orders", 201)
    # And the events of the command carry it, with the command as their cause
    stored = events.read_commits(f"order-{body['order_id']}")[0].metadata
    assert (stored.correlation_id, stored.causation_id) == ("trace-42", stored.command_id)


def test_a_request_without_an_id_gets_a_fresh_one_and_never_the_previous_requests(
    events: InMemoryEventStore,
) -> None:
    command("POST", "/orders", body=BODY, headers={"X-Correlation-Id": "first"})
    with json_lines(commands.logger) as lines:
        response = commands.lambda_handler(http_event("POST", "/orders", body=BODY), FakeLambdaContext())

    generated = response["headers"]["X-Correlation-Id"]
    assert generated != "first"
    assert {line.get("correlation_id") for line in lines} == {generated}


def test_commands_emit_accepted_and_rejected_metrics_with_the_correlation_id(
    events: InMemoryEventStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert command("POST", "/orders", body=BODY, headers={"X-Correlation-Id": "ok-1"})[0] == 201
    status, _ = command(
        "POST", f"/orders/{uuid.uuid4()}/items", body=ITEM, headers={"X-Correlation-Id": "no-1"}
    )
    assert status == 404

    blobs = emf_blobs(capsys.readouterr().out)

    assert [(metric_names(b), b["command"], b["correlation_id"]) for b in blobs] == [
        ({"CommandAccepted"}, "PlaceOrder", "ok-1"),
        ({"CommandRejected"}, "AddItem", "no-1"),
    ]
    assert {b["_aws"]["CloudWatchMetrics"][0]["Namespace"] for b in blobs} == {"OrdersTest"}
    assert blobs[1]["status"] == 404 and blobs[0]["service"] == "orders-commands"
    assert ["command", "service"] in [
        sorted(dims) for b in blobs for d in b["_aws"]["CloudWatchMetrics"] for dims in d["Dimensions"]
    ]


def test_metrics_can_be_turned_off_and_then_print_nothing(
    events: InMemoryEventStore, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    assert command("POST", "/orders", body=BODY)[0] == 201
    assert emf_blobs(capsys.readouterr().out) == []


def test_query_log_lines_carry_the_correlation_id(events: InMemoryEventStore) -> None:
    _, body = command("POST", "/orders", body=BODY)
    with json_lines(queries.logger) as lines:
        response = queries.lambda_handler(
            http_event("GET", f"/orders/{body['order_id']}/events", headers={"X-Correlation-Id": "read-7"}),
            FakeLambdaContext(),
        )

    assert response["statusCode"] == 200
    assert lines and {line.get("correlation_id") for line in lines} == {"read-7"}


def test_the_history_shows_which_command_caused_each_event(events: InMemoryEventStore) -> None:
    _, placed = command(
        "POST", "/orders", body=BODY, headers={"X-Correlation-Id": "flow-1", "Idempotency-Key": "place-key-1"}
    )
    order_id = placed["order_id"]
    command("POST", f"/orders/{order_id}/items", body=ITEM, headers={"X-Correlation-Id": "flow-1"})

    response = queries.lambda_handler(http_event("GET", f"/orders/{order_id}/events"), FakeLambdaContext())

    shown = json.loads(response["body"])["events"]
    assert [(e["version"], e["correlation_id"]) for e in shown] == [(v, "flow-1") for v in range(1, 6)]
    assert {e["causation_id"] for e in shown[:3]} == {"place-key-1"}  # the Idempotency-Key names the command
    assert shown[3]["causation_id"] == shown[4]["causation_id"] == shown[3]["command_id"] != "place-key-1"


# -- the projection function ---------------------------------------------------------------------


class FailsSecondCommit:
    name = "test_projection"

    def process(self, commits: Sequence[Commit]) -> dict[int, Exception]:
        return {1: RuntimeError("row kept moving")} if len(commits) > 1 else {}


def test_projections_log_each_commit_with_the_ids_of_the_command_behind_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    store = InMemoryEventStore()
    service = CommandService(store)
    commits = []
    for correlation in ("corr-a", "corr-b", "corr-c"):
        order_id = new_order_id()
        ctx = replace(context(), correlation_id=correlation)
        service.execute(ORDER, order_id, place_order(order_id), ctx, expect_new=True)
        commits.extend(store.read_commits(f"order-{order_id}"))

    with json_lines(projection_function.logger) as lines:
        response = projection_function.handle_batch(
            {"Records": stream_records(commits)}, FakeLambdaContext(), FailsSecondCommit()
        )

    assert response == {"batchItemFailures": [{"itemIdentifier": f"{2:021d}"}]}
    per_commit = [line for line in lines if line["message"] in ("commit projected", "commit not projected")]
    assert [(line["message"], line["correlation_id"], line["projection"]) for line in per_commit] == [
        ("commit projected", "corr-a", "test_projection"),
        ("commit not projected", "corr-b", "test_projection"),
        ("commit projected", "corr-c", "test_projection"),
    ]
    assert all(
        line["causation_id"] == line["command_id"] == c.metadata.command_id
        for line, c in zip(per_commit, commits, strict=True)
    )
    assert "row kept moving" in per_commit[1]["error"]

    (blob,) = emf_blobs(capsys.readouterr().out)
    assert metric_names(blob) == {"EventsProjected", "ProjectionFailures"}
    # Six events in the two commits applied; one commit failed
    assert (blob["EventsProjected"], blob["ProjectionFailures"], blob["projection"]) == (
        [6.0],
        [1.0],
        "test_projection",
    )
    assert blob["correlation_ids"] == ["corr-a", "corr-b", "corr-c"]
