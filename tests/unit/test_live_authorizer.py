"""The $connect authorizer and routes: a Cognito access token (RS256, the pool's keys, issuer,
expiry, token_use, client_id) lets a connection in with its subject and groups; anything else is
"Unauthorized" (API Gateway's 401). $connect and $disconnect remember and forget connections."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from live_api import handler as live_api
from live_authorizer import handler as authorizer
from live_authorizer.tokens import CognitoAccessTokens, InvalidToken

from orders_core import composition
from orders_core.live.memory import InMemoryConnectionStore
from orders_core.live.port import CONNECTION_LIFETIME_SECONDS
from tests.support.apigw import FakeLambdaContext

ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool"
CLIENT = "app-client"
METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abc123/live/$connect"
POOL_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class StaticKeys:
    def __init__(self) -> None:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(POOL_KEY.public_key(), as_dict=True)
        self._keys = {"pool-1": jwt.PyJWK({**public, "kid": "pool-1", "alg": "RS256", "use": "sig"})}

    def get_signing_key(self, kid: str) -> jwt.PyJWK:
        if kid not in self._keys:
            raise jwt.PyJWKClientError(f'Unable to find a signing key that matches: "{kid}"')
        return self._keys[kid]


def token(key: Any = POOL_KEY, *, kid: str = "pool-1", alg: str = "RS256", **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "sub": "alice-sub",
        "iss": ISSUER,
        "client_id": CLIENT,
        "token_use": "access",
        "iat": now,
        "exp": now + 600,
        "cognito:groups": ["operators"],
        **overrides,
    }
    return jwt.encode(
        {k: v for k, v in claims.items() if v is not None}, key, algorithm=alg, headers={"kid": kid}
    )


@pytest.fixture
def tokens() -> CognitoAccessTokens:
    return CognitoAccessTokens(ISSUER, [CLIENT, "another-app-client"], keys=StaticKeys())


def connect_event(value: str | None) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "queryStringParameters": {"token": value} if value else None,
    }


def test_any_app_client_of_the_pool_is_accepted(tokens: CognitoAccessTokens) -> None:
    assert tokens.verify(token(client_id="another-app-client"))["sub"] == "alice-sub"


def test_the_settings_name_the_app_clients_comma_separated() -> None:
    settings = composition.Settings.from_environ({"LIVE_TOKEN_CLIENT_IDS": "web, mobile,,cli"})
    assert settings.live_token_client_ids == ("web", "mobile", "cli")


def test_a_valid_token_gets_this_connect_only_and_its_identity(tokens: CognitoAccessTokens) -> None:
    answer = authorizer.authorize(connect_event(token()), tokens)

    assert answer["principalId"] == "alice-sub"
    assert answer["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": METHOD_ARN}
    ]
    # Strings only: API Gateway refuses anything else in an authorizer's context.
    assert answer["context"] == {"sub": "alice-sub", "groups": "operators"}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "malformed token"),
        ("not-a-jwt", "malformed token"),
        (token(exp=int(time.time()) - 1), "token expired"),
        (token(OTHER_KEY), "bad signature"),
        (token(OTHER_KEY, kid="forged"), "signed by a key the user pool does not publish"),
        (token(iss="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other"), "wrong issuer"),
        (token(client_id="someone-elses-client"), "issued to another app client"),
        (token(token_use="id"), "not an access token"),
        (token(token_use=None), "invalid token (MissingRequiredClaimError)"),
        (jwt.encode({"sub": "x"}, "a-shared-secret-of-32-bytes-or-more!", algorithm="HS256"), "unsupported"),
    ],
)
def test_anything_else_is_unauthorized(tokens: CognitoAccessTokens, value: str | None, reason: str) -> None:
    with pytest.raises(InvalidToken, match=reason.split(" (")[0].replace("(", r"\(")):
        tokens.verify(value or "")
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.authorize(connect_event(value), tokens)


@pytest.fixture
def connections() -> Any:
    store = InMemoryConnectionStore()
    composition.use(composition.Root(composition.Settings(), live_connections=store))
    yield store
    composition.use(None)


def route_event(route: str, connection_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "requestContext": {
            "routeKey": route,
            "connectionId": connection_id,
            "connectedAt": 1_800_000_000_000,
            "authorizer": {"principalId": "olga", "sub": "olga", "groups": "operators"},
            **extra,
        }
    }


def test_connect_remembers_the_connection_until_api_gateway_would_close_it(connections: Any) -> None:
    answer = live_api.lambda_handler(route_event("$connect", "c-1"), FakeLambdaContext())

    assert answer == {"statusCode": 200}
    (found,) = connections.of_group("operators", now=1_800_000_000)
    assert (found.connection_id, found.expires_at) == ("c-1", 1_800_000_000 + CONNECTION_LIFETIME_SECONDS)
    assert [r.connection_id for r in connections.of_subject("olga", now=1_800_000_000)] == ["c-1"]


def test_disconnect_forgets_it_and_messages_are_answered_with_nothing(connections: Any) -> None:
    live_api.lambda_handler(route_event("$connect", "c-1"), FakeLambdaContext())
    assert live_api.lambda_handler(
        {**route_event("$default", "c-1"), "body": "ping"}, FakeLambdaContext()
    ) == {"statusCode": 200}
    live_api.lambda_handler(route_event("$disconnect", "c-1"), FakeLambdaContext())
    assert list(connections.of_subject("olga", now=1_800_000_000)) == []
