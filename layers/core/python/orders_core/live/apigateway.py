"""Pushing to API Gateway WebSocket connections: the @connections API's PostToConnection.

A connection that is closed answers 410 GoneException: the caller forgets it. Anything else that
fails (throttled: LimitExceededException, out of reach) raises PushFailed, so that the change is
delivered again; the SDK's own retries come first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from orders_core.live.port import PushFailed, PushOutcome

if TYPE_CHECKING:
    from botocore.client import BaseClient


def management_client(endpoint_url: str) -> BaseClient:
    """A client of the stage's @connections API: https://<api-id>.execute-api.<region>.amazonaws.com/<stage>
    on AWS; the local WebSocket server's management address locally."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)
    client: BaseClient = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint_url, config=config)
    return client


class ApiGatewayPusher:
    def __init__(self, client: Any) -> None:
        self._client = client

    def push(self, connection_id: str, message: bytes) -> PushOutcome:
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=message)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "GoneException":
                return PushOutcome.GONE
            raise PushFailed(f"PostToConnection failed: {code or 'unknown error'}") from exc
        except BotoCoreError as exc:
            raise PushFailed(f"PostToConnection failed: {type(exc).__name__}") from exc
        return PushOutcome.DELIVERED
