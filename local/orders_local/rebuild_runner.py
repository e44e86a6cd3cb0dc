"""Runs the rebuild workflow locally: the same ASL file the stack deploys, on moto's Step Functions
interpreter, with its Lambda tasks dispatched to the in-process handler.

This leans on one moto internal: the interpreter builds its Lambda client with
`lambda_eval_utils.boto_client_for`. We answer for the functions we know and hand the rest on. A
handler that raises `LostResponse` has run, but its caller sees Lambda's `ServiceException` (the
answer lost on the way back), which the workflow's Retry blocks retry: how tests prove each step
may run twice.

**The status-change rule's stand-in.** On AWS an EventBridge rule (infra/rebuild.py) hands every
execution of the rebuild state machine that ends ABORTED, TIMED_OUT or FAILED to the worker, which
abandons its run (releases the claim, removes the partial generation): a StopExecution, the
execution's own `TimeoutSeconds`, or an Abandon that failed itself leave no step of the workflow
to do it. moto's Step Functions emits no EventBridge events, so `ExecutionWatcher` does the rule's
part for the local run: a daemon thread lists the state machine's executions every 0.5 s (one
ListExecutions call, which carries each execution's status) and, for each one it sees end in one
of those statuses, describes it and invokes the worker with the event the rule would deliver
(`status_change_event`: source `aws.states`, detail-type `Step Functions Execution Status
Change`, detail with `executionArn`, `stateMachineArn`, `name`, `status`, ...). Like the rule's
target, it retries a failed delivery (three attempts); what still fails is logged and kept in
`dead_letters`, the local dead-letter queue. Executions that had ended before the watcher started
are not reported. `orders serve` (orders_local.system) and the rebuild tests run one.

moto runs `TimeoutSeconds` (TIMED_OUT), StopExecution (ABORTED: once the task in flight returns),
Distributed Maps over an array input (`ItemsPath`, no ItemReader) and `States.MathAdd` as AWS does;
it ignores the export's `ClientToken` (each call exports again) and reports a Distributed Map
whose child failed as succeeded (the worker's `verify` step catches that).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from orders_local.gateway import LambdaHandler
from orders_local.lambda_events import DEFAULT_ACCOUNT_ID, FakeLambdaContext

logger = logging.getLogger(__name__)

WORKFLOW_FILE = "workflows/rebuild.asl.json"
WORKER_FUNCTION = "orders-rebuild-worker"
# As the stack sizes the rebuild worker (infra/settings.py, RebuildSettings; infra/rebuild.py).
WORKER_MEMORY_MB = 2048
WORKER_TIMEOUT_SECONDS = 900
# The workflow's numeric placeholders, sized for a local run: a rebuild of a local log takes under
# a minute, and moto runs each map item on a thread of this process.
LOCAL_TIMEOUT_SECONDS = 3600
LOCAL_SHUFFLE_CONCURRENCY = 4
LOCAL_APPLY_CONCURRENCY = 8

# What the status-change rule matches (infra/rebuild.py, ABANDONED_STATUSES).
ENDED_WITHOUT_SUCCESS = ("ABORTED", "TIMED_OUT", "FAILED")
STATUS_CHANGE = "Step Functions Execution Status Change"
WATCH_INTERVAL_SECONDS = 0.5
DELIVERY_ATTEMPTS = 3

_handlers: dict[str, LambdaHandler] = {}
_install_lock = threading.Lock()
_installed = False


def definition_path() -> Path:
    for parent in Path(__file__).resolve().parents:
        candidate = parent / WORKFLOW_FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{WORKFLOW_FILE} not found above {Path(__file__).parent}")


def render_definition(substitutions: Mapping[str, str]) -> str:
    """The ASL with `${Name}` placeholders filled, as CDK's definition_substitutions would."""
    text = definition_path().read_text()
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    if "${" in text:
        missing = text[text.index("${") : text.index("}", text.index("${")) + 1]
        raise ValueError(f"no substitution for {missing}")
    return text


def function_arn(name: str, region: str) -> str:
    return f"arn:aws:lambda:{region}:{DEFAULT_ACCOUNT_ID}:function:{name}"


class LostResponse(Exception):
    """Raised by a handler that has done its work: the caller gets Lambda's ServiceException
    instead of the answer (as when Lambda's reply is lost), and the workflow retries the step."""


def _lost(function_name: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "ServiceException", "Message": f"{function_name}: the response was lost"},
            "ResponseMetadata": {
                "HTTPStatusCode": 500,
                "RequestId": str(uuid.uuid4()),
                "HostId": "",
                "HTTPHeaders": {},
                "RetryAttempts": 0,
            },
        },
        "Invoke",
    )


def _context(function_name: str, function_arn: str) -> FakeLambdaContext:
    return FakeLambdaContext(
        function_name=function_name,
        aws_request_id=str(uuid.uuid4()),
        invoked_function_arn=function_arn,
        memory_limit_in_mb=WORKER_MEMORY_MB,
        deadline=time.monotonic() + WORKER_TIMEOUT_SECONDS,
    )


class _InProcessLambda:
    """Just enough of a Lambda client for the interpreter's `invoke`."""

    def __init__(self, fallback: Any) -> None:
        self._fallback = fallback

    def invoke(self, FunctionName: str, Payload: Any = None, **kwargs: Any) -> dict[str, Any]:
        handler = _handlers.get(FunctionName.rsplit(":", 1)[-1])
        if handler is None:
            return dict(self._fallback.invoke(FunctionName=FunctionName, Payload=Payload, **kwargs))
        event = json.loads(Payload) if Payload else {}
        name = FunctionName.rsplit(":", 1)[-1]
        try:
            result = handler(event, _context(name, FunctionName))
        except LostResponse:
            raise _lost(name) from None
        except Exception as exc:  # reported to the state machine as Lambda reports an unhandled error
            error = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exception(exc)[-3:],
            }
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": io.BytesIO(json.dumps(error).encode()),
            }
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(result).encode())}


def install_lambda_dispatch(handlers: Mapping[str, LambdaHandler]) -> None:
    """Route the interpreter's Lambda invocations of these function names to in-process handlers."""
    global _installed
    from moto.core.config import default_user_config
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    _handlers.update(handlers)
    with _install_lock:
        default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
        if _installed:
            return
        original = lambda_eval_utils.boto_client_for

        def boto_client_for(service: str, region: str, state_credentials: Any) -> Any:
            client = original(service=service, region=region, state_credentials=state_credentials)
            return _InProcessLambda(client) if service == "lambda" else client

        lambda_eval_utils.boto_client_for = boto_client_for  # type: ignore[assignment]
        _installed = True


def create_state_machine(
    *,
    stepfunctions: Any,
    dynamodb: Any,
    s3: Any,
    events_table: str,
    bucket: str,
    region: str,
    worker: LambdaHandler,
    name: str = "orders-rebuild",
    timeout_seconds: int = LOCAL_TIMEOUT_SECONDS,
    shuffle_concurrency: int = LOCAL_SHUFFLE_CONCURRENCY,
    apply_concurrency: int = LOCAL_APPLY_CONCURRENCY,
) -> str:
    """Everything the workflow needs locally; returns the state machine's ARN. The numbers fill
    the placeholders the stack fills from its settings (the execution's timeout, the maps'
    concurrency)."""
    install_lambda_dispatch({WORKER_FUNCTION: worker})
    # Exports need point-in-time recovery, as on AWS (the stack turns it on).
    dynamodb.update_continuous_backups(
        TableName=events_table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
    table_arn = dynamodb.describe_table(TableName=events_table)["Table"]["TableArn"]
    definition = render_definition(
        {
            "RebuildWorkerArn": function_arn(WORKER_FUNCTION, region),
            "EventsTableArn": table_arn,
            "ExportBucket": bucket,
            "RebuildTimeoutSeconds": str(int(timeout_seconds)),
            "ShuffleConcurrency": str(int(shuffle_concurrency)),
            "ApplyConcurrency": str(int(apply_concurrency)),
        }
    )
    role = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/{name}"
    for machine in stepfunctions.list_state_machines()["stateMachines"]:
        if machine["name"] == name:
            stepfunctions.update_state_machine(
                stateMachineArn=machine["stateMachineArn"], definition=definition
            )
            return str(machine["stateMachineArn"])
    return str(
        stepfunctions.create_state_machine(name=name, definition=definition, roleArn=role)["stateMachineArn"]
    )


# -- the status-change rule's stand-in ---------------------------------------------------------------


def _epoch_millis(value: Any) -> int | None:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else None


def status_change_event(execution: Mapping[str, Any], *, region: str) -> dict[str, Any]:
    """The event EventBridge delivers for an execution's status change (source `aws.states`),
    from a DescribeExecution answer."""
    arn = str(execution["executionArn"])
    detail: dict[str, Any] = {
        "executionArn": arn,
        "stateMachineArn": execution["stateMachineArn"],
        "name": execution["name"],
        "status": execution["status"],
        "startDate": _epoch_millis(execution.get("startDate")),
        "stopDate": _epoch_millis(execution.get("stopDate")),
        "input": execution.get("input"),
        "output": execution.get("output"),
        "error": execution.get("error"),
        "cause": execution.get("cause"),
    }
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": STATUS_CHANGE,
        "source": "aws.states",
        "account": arn.split(":")[4] if arn.count(":") >= 4 else DEFAULT_ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [arn],
        "detail": detail,
    }


class ExecutionWatcher:
    """The local stand-in for the stack's status-change rule (see the module's docstring)."""

    def __init__(
        self,
        stepfunctions: Any,
        state_machine_arn: str,
        deliver: Callable[[dict[str, Any]], Any],
        *,
        interval: float = WATCH_INTERVAL_SECONDS,
        attempts: int = DELIVERY_ATTEMPTS,
        retry_pause: float = 1.0,
    ) -> None:
        self._client = stepfunctions
        self.state_machine_arn = state_machine_arn
        self._deliver = deliver
        self._interval = interval
        self._attempts = attempts
        self._retry_pause = retry_pause
        self._region = state_machine_arn.split(":")[3]
        self._ended: set[str] = set()  # executions seen ending (or ended before we started)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered: list[dict[str, Any]] = []
        self.dead_letters: list[tuple[dict[str, Any], str]] = []

    def start(self) -> ExecutionWatcher:
        if self._thread is not None:
            raise RuntimeError("the watcher is already started")
        self._ended = {e["executionArn"] for e in self._executions() if e["status"] != "RUNNING"}
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"rebuild-status-{self.state_machine_arn.rsplit(':', 1)[-1]}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Idempotent; waits for a delivery in flight."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def poll(self) -> list[dict[str, Any]]:
        """One look at the executions: deliver an event for each that ended ABORTED, TIMED_OUT or
        FAILED since the last look. Answers the events delivered (or dead-lettered)."""
        events = []
        for execution in self._executions():
            arn = execution["executionArn"]
            if execution["status"] == "RUNNING" or arn in self._ended:
                continue
            self._ended.add(arn)
            if execution["status"] in ENDED_WITHOUT_SUCCESS:
                described = self._client.describe_execution(executionArn=arn)
                event = status_change_event(described, region=self._region)
                self._send(event)
                events.append(event)
        return events

    def _executions(self) -> list[dict[str, Any]]:
        paginator = self._client.get_paginator("list_executions")
        return [
            execution
            for page in paginator.paginate(stateMachineArn=self.state_machine_arn)
            for execution in page["executions"]
        ]

    def _send(self, event: dict[str, Any]) -> None:
        name, status = event["detail"]["name"], event["detail"]["status"]
        for attempt in range(1, self._attempts + 1):
            try:
                self._deliver(event)
            except Exception as exc:
                if attempt == self._attempts:
                    logger.error(
                        "rebuild execution %s ended %s; the worker failed on it: %s", name, status, exc
                    )
                    self.dead_letters.append((event, f"{type(exc).__name__}: {exc}"))
                    return
                self._stop.wait(self._retry_pause)
            else:
                logger.info("rebuild execution %s ended %s: handed to the worker", name, status)
                self.delivered.append(event)
                return

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.poll()
            except Exception:  # keep watching: the next look may work (moto restarting, a blip)
                logger.exception("watching the rebuild executions of %s failed", self.state_machine_arn)


def watch_executions(
    stepfunctions: Any,
    state_machine_arn: str,
    worker: LambdaHandler,
    *,
    interval: float = WATCH_INTERVAL_SECONDS,
) -> ExecutionWatcher:
    """Start the status-change rule's stand-in for this state machine, delivering to the worker."""
    arn = function_arn(WORKER_FUNCTION, state_machine_arn.split(":")[3])

    def deliver(event: dict[str, Any]) -> Any:
        return worker(event, _context(WORKER_FUNCTION, arn))

    return ExecutionWatcher(stepfunctions, state_machine_arn, deliver, interval=interval).start()
