"""Live authorizer function: the WebSocket API's Lambda REQUEST authorizer on $connect (ADR 14).

Browsers cannot set headers on a WebSocket, so the Cognito access token comes as `?token=`
(identity source `route.request.querystring.token`: API Gateway answers 401 without calling this
function when it is missing). A token that fails verification raises "Unauthorized", which API
Gateway answers with 401 and nothing else; a valid one gets a policy allowing this connection's
$connect and a context (subject, groups) that every later route of the connection receives.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger

from live_authorizer.tokens import CognitoAccessTokens, InvalidToken
from orders_core import composition
from orders_core.composition import ConfigurationError
from orders_core.live.identity import NoIdentity, identity_from_claims

logger = Logger(service="orders-live-authorizer")

# The message API Gateway turns into a 401 (any other failure is a 500).
UNAUTHORIZED = "Unauthorized"


@cache
def verifier() -> CognitoAccessTokens:
    settings = composition.root().settings
    if not settings.live_token_issuer or not settings.live_token_client_ids:
        raise ConfigurationError("LIVE_TOKEN_ISSUER and LIVE_TOKEN_CLIENT_IDS must both be set")
    return CognitoAccessTokens(settings.live_token_issuer, settings.live_token_client_ids)


def policy(principal: str, method_arn: str, context: dict[str, str]) -> dict[str, Any]:
    """An IAM policy allowing this connection's $connect only (the method ARN API Gateway sent)."""
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": method_arn}],
        },
        "context": context,
    }


def authorize(event: dict[str, Any], tokens: CognitoAccessTokens) -> dict[str, Any]:
    token = (event.get("queryStringParameters") or {}).get("token") or ""
    try:
        identity = identity_from_claims(tokens.verify(token))
    except (InvalidToken, NoIdentity) as exc:
        logger.info("connection refused", reason=getattr(exc, "reason", str(exc)))
        raise Exception(UNAUTHORIZED) from exc
    return policy(identity.subject, str(event["methodArn"]), identity.authorizer_context())


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return authorize(event, verifier())
