"""LocalSystem end to end over real HTTP, with fake handlers instead of the service's functions."""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from typing import Any

import boto3
import pytest

from orders_local.system import LocalSystem, PortInUse
from orders_local.tokens import issue_token

SECRET = "system-test-secret-that-is-32-bytes-or-more"


def _writing_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # Uses only what the environment provides, as the real handlers do.
    dynamodb = boto3.client("dynamodb")
    dynamodb.put_item(
        TableName=os.environ["EVENTS_TABLE"],
        Item={"stream_id": {"S": event["pathParameters"]["order_id"]}, "version": {"N": "1"}},
    )
    return {"statusCode": 202, "headers": {"Content-Type": "application/json"}, "body": '{"ok": true}'}


def _reading_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    dynamodb = boto3.client("dynamodb")
    items = dynamodb.query(
        TableName=os.environ["EVENTS_TABLE"],
        KeyConditionExpression="stream_id = :s",
        ExpressionAttributeValues={":s": {"S": event["pathParameters"]["order_id"]}},
    )["Items"]
    return {"versions": [int(item["version"]["N"]) for item in items]}


def _call(url: str, method: str, token: str | None) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_local_system_serves_the_api_on_moto_and_restores_the_environment() -> None:
    # Given no external endpoint, and fake functions that use the tables through the environment
    assert "AWS_ENDPOINT_URL" not in os.environ
    system = LocalSystem(
        port=0,
        secret=SECRET,
        handlers={
            "command_api": _writing_handler,
            "query_api": _reading_handler,
            "admin_api": _reading_handler,
        },
        projections=False,
        table_prefix="system-test",
    )
    token = issue_token("alice", operator=False, secret=SECRET)

    # When it runs and a command and a query go through the API over HTTP
    with system:
        assert system.moto_started
        assert os.environ["EVENTS_TABLE"] == "system-test-events"
        assert os.environ["AWS_ENDPOINT_URL"] == system.endpoint_url
        written = _call(f"{system.url}/orders/o-42/items", "POST", token)
        read = _call(f"{system.url}/orders/o-42/events", "GET", token)
        unauthorized = _call(f"{system.url}/orders/o-42/events", "GET", None)

    # Then the write landed in moto's table and was read back; the token was required
    assert written == (202, {"ok": True})
    assert read == (200, {"versions": [1]})
    assert unauthorized == (401, {"message": "Unauthorized"})
    # And after stop() the process environment is as before
    assert "AWS_ENDPOINT_URL" not in os.environ
    assert "EVENTS_TABLE" not in os.environ
    assert not system.started


def test_busy_port_fails_fast_without_starting_moto() -> None:
    # Given a port some other program listens on
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        handlers = {
            "command_api": _writing_handler,
            "query_api": _reading_handler,
            "admin_api": _reading_handler,
        }
        system = LocalSystem(port=port, secret=SECRET, handlers=handlers, projections=False)

        # When the system starts on it
        with pytest.raises(PortInUse) as raised:
            system.start()

    # Then it says so, and nothing was left running
    assert raised.value.port == port
    assert not system.moto_started
    assert not system.started


def test_workers_0_runs_the_real_functions_in_this_process() -> None:
    # Given the system with no instances: every function in this process, one request at a time
    system = LocalSystem(port=0, secret=SECRET, projections=False, workers=0, table_prefix="in-process-test")
    token = issue_token("alice", operator=False, secret=SECRET)
    address = {"line1": "1 Canal St", "city": "Amsterdam", "postal_code": "1011", "country": "NL"}
    line = {"product_id": "sku-1", "quantity": 1, "unit_price": "2.00"}
    order = {"items": [line], "shipping_address": address}

    # When an order is placed through it
    with system:
        body = json.dumps(order).encode()
        request = urllib.request.Request(f"{system.url}/orders", method="POST", data=body)
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", "application/json")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as reply:
            status, placed = reply.status, json.loads(reply.read())
        pids = system.instance_pids()

    # Then the real command function answered, and no instance process ran
    assert status == 201 and placed["version"] == 3
    assert pids == [] and system.gateway_process is None
