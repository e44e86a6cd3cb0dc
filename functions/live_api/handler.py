"""Live API function: the WebSocket API's $connect, $disconnect and $default routes (ADR 14).

$connect runs only after the authorizer (functions/live_authorizer) let the token in; its
`context` (subject, groups) comes with every route of the connection. $connect remembers the
connection, $disconnect forgets it. $default answers client messages with nothing: the protocol
has none, and a client may send anything to stay inside API Gateway's 10-minute idle timeout.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger

from orders_core import composition
from orders_core.live.identity import identity_from_authorizer_context

logger = Logger(service="orders-live")

CONNECT, DISCONNECT = "$connect", "$disconnect"


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = event.get("requestContext") or {}
    route, connection_id = request.get("routeKey"), str(request.get("connectionId", ""))
    sessions = composition.root().live_sessions
    if route == CONNECT:
        identity = identity_from_authorizer_context(request.get("authorizer"))
        # connectedAt: epoch milliseconds, when API Gateway accepted the connection.
        connected_at = float(request.get("connectedAt") or time.time() * 1000) / 1000
        sessions.open(connection_id, identity, connected_at=connected_at)
        logger.info("connected", connection_id=connection_id, subject=identity.subject)
    elif route == DISCONNECT:
        sessions.close(connection_id)
        logger.info("disconnected", connection_id=connection_id, reason=request.get("disconnectReason"))
    return {"statusCode": 200}
