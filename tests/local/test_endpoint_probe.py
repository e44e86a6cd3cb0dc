"""probe_endpoint: what an external AWS_ENDPOINT_URL lacks, said in one line, and `orders serve` on it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from orders_local.cli import main
from orders_local.system import probe_endpoint

ENDPOINT = "http://127.0.0.1:8001"


@pytest.fixture(autouse=True)
def _aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def _stubbed(errors: dict[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """Clients whose probe call answers, or fails with the error code given for their service."""
    asked: list[str] = []
    operations = {"dynamodb": "list_tables", "dynamodbstreams": "list_streams", "sqs": "list_queues"}
    replies: dict[str, dict[str, Any]] = {
        "dynamodb": {"TableNames": []},
        "dynamodbstreams": {"Streams": []},
        "sqs": {"QueueUrls": []},
    }

    def client(service: Any) -> Any:
        asked.append(service)
        made = boto3.client(service, endpoint_url=ENDPOINT)
        stubber = Stubber(made)
        if service in errors:
            stubber.add_client_error(
                operations[service], service_error_code=errors[service], service_message="Unknown operation"
            )
        else:
            stubber.add_response(operations[service], replies[service])
        stubber.activate()
        return made

    return client, asked


def test_an_endpoint_with_every_service_passes() -> None:
    client, asked = _stubbed({})
    assert probe_endpoint(ENDPOINT, projections=True, client=client) is None
    assert asked == ["dynamodb", "dynamodbstreams", "sqs"]


@pytest.mark.parametrize(("service", "label"), [("dynamodbstreams", "DynamoDB Streams"), ("sqs", "SQS")])
def test_a_missing_service_is_named_with_the_way_to_run(service: str, label: str) -> None:
    # Given an endpoint like DynamoDB Local that does not know the service's operations
    client, _ = _stubbed({service: "UnknownOperationException"})

    # When it is probed for a run with read models
    problem = probe_endpoint(ENDPOINT, projections=True, client=client)

    # Then one line says what is missing and how to run instead
    assert problem is not None and "\n" not in problem
    assert f"has no {label}" in problem
    assert "without AWS_ENDPOINT_URL" in problem and "--no-projections" in problem


def test_without_projections_streams_and_sqs_are_not_probed() -> None:
    client, asked = _stubbed({"dynamodbstreams": "UnknownOperationException", "sqs": "InvalidAction"})
    assert probe_endpoint(ENDPOINT, projections=False, client=client) is None
    assert asked == ["dynamodb"]


def test_an_unreachable_endpoint_says_so() -> None:
    class Down:
        def list_tables(self, **kwargs: object) -> object:
            raise EndpointConnectionError(endpoint_url=ENDPOINT)

    problem = probe_endpoint(ENDPOINT, projections=False, client=lambda service: Down())
    assert problem is not None and problem.startswith(f"cannot reach {ENDPOINT}")
    assert "without AWS_ENDPOINT_URL" in problem and "\n" not in problem


class _DynamoDBOnly(BaseHTTPRequestHandler):
    """Answers like DynamoDB Local would for this probe: DynamoDB yes, every other service unknown."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body: dict[str, Any] = {
            "__type": "com.amazonaws.dynamodb.v20120810#UnknownOperationException",
            "message": "An unknown operation was requested.",
        }
        status = 400
        if self.headers.get("X-Amz-Target", "").startswith("DynamoDB_20120810."):
            status, body = 200, {"TableNames": []}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def dynamodb_only_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DynamoDBOnly)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_serve_on_an_endpoint_without_streams_exits_2_with_one_line(
    dynamodb_only_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given AWS_ENDPOINT_URL names an endpoint with DynamoDB but no DynamoDB Streams
    monkeypatch.setenv("AWS_ENDPOINT_URL", dynamodb_only_endpoint)
    monkeypatch.setenv("ORDERS_LOCAL_JWT_SECRET", "probe-test-secret-that-is-32-bytes-or-more")

    # When orders serve starts on it
    code = main(["serve", "--port", "0", "--live-port", "0"])

    # Then it exits 2 with one line that says what is missing and how to run, and no traceback
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.count("\n") == 1, captured.err
    assert "has no DynamoDB Streams" in captured.err
    assert "without AWS_ENDPOINT_URL" in captured.err and "--no-projections" in captured.err
    assert "Traceback" not in captured.err + captured.out
