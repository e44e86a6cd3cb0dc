"""Runs the rebuild workflow locally: the same ASL file the stack deploys, on moto's Step Functions
interpreter, with its Lambda tasks dispatched to the in-process handler.

This leans on one moto internal: the interpreter builds its Lambda client with
`lambda_eval_utils.boto_client_for`. We answer for the functions we know and hand the rest on.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orders_local.gateway import LambdaHandler
from orders_local.lambda_events import DEFAULT_ACCOUNT_ID, FakeLambdaContext

WORKFLOW_FILE = "workflows/rebuild.asl.json"
WORKER_FUNCTION = "orders-rebuild-worker"
# As the stack sizes the rebuild worker (infra/rebuild.py).
WORKER_MEMORY_MB = 1024
WORKER_TIMEOUT_SECONDS = 900

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


class _InProcessLambda:
    """Just enough of a Lambda client for the interpreter's `invoke`."""

    def __init__(self, fallback: Any) -> None:
        self._fallback = fallback

    def invoke(self, FunctionName: str, Payload: Any = None, **kwargs: Any) -> dict[str, Any]:
        handler = _handlers.get(FunctionName.rsplit(":", 1)[-1])
        if handler is None:
            return dict(self._fallback.invoke(FunctionName=FunctionName, Payload=Payload, **kwargs))
        event = json.loads(Payload) if Payload else {}
        try:
            context = FakeLambdaContext(
                function_name=FunctionName.rsplit(":", 1)[-1],
                aws_request_id=str(uuid.uuid4()),
                invoked_function_arn=FunctionName,
                memory_limit_in_mb=WORKER_MEMORY_MB,
                deadline=time.monotonic() + WORKER_TIMEOUT_SECONDS,
            )
            result = handler(event, context)
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
) -> str:
    """Everything the workflow needs locally; returns the state machine's ARN."""
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
