"""Cognito access tokens, verified as the HTTP API's JWT authorizer verifies them (ADR 14).

The signature (RS256) against the user pool's published keys (its JWKS, fetched once and kept
while the function is warm; an unknown key id fetches them again, for key rotation), the issuer
(the pool), expiry, `token_use` = access and `client_id` = one of the app clients: what API
Gateway's JWT authorizer checks for the HTTP API, so one token opens both.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import jwt

ALGORITHM = "RS256"
# How long fetched keys are kept before they are fetched again (PyJWKClient's lifespan, seconds).
KEYS_LIFESPAN_SECONDS = 3600


class InvalidToken(Exception):
    """The token must not be trusted; `reason` says why (for the logs, never for the client)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SigningKeys(Protocol):
    """The user pool's published keys by key id (PyJWKClient; tests pass a static set)."""

    def get_signing_key(self, kid: str) -> jwt.PyJWK: ...


class CognitoAccessTokens:
    def __init__(self, issuer: str, client_ids: Iterable[str], *, keys: SigningKeys | None = None) -> None:
        self._issuer = issuer.rstrip("/")
        self._client_ids = frozenset(client_ids)
        self._keys: SigningKeys = keys or jwt.PyJWKClient(
            f"{self._issuer}/.well-known/jwks.json", cache_keys=True, lifespan=KEYS_LIFESPAN_SECONDS
        )

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or InvalidToken. A key set out of reach raises PyJWKClientConnectionError
        (not the client's fault: the authorizer fails, and API Gateway answers 500)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise InvalidToken("malformed token") from exc
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"unsupported algorithm {header.get('alg')!r}")
        try:
            key = self._keys.get_signing_key(str(header.get("kid", "")))
        except jwt.PyJWKClientConnectionError:
            raise
        except jwt.PyJWKClientError as exc:
            raise InvalidToken("signed by a key the user pool does not publish") from exc
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                # Cognito access tokens carry client_id, not aud: checked below.
                options={"require": ["exp", "iat", "iss", "sub", "token_use"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token expired") from exc
        except jwt.InvalidSignatureError as exc:
            raise InvalidToken("bad signature") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidToken("wrong issuer") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"invalid token ({type(exc).__name__})") from exc
        if claims.get("token_use") != "access":
            raise InvalidToken("not an access token")
        if claims.get("client_id") not in self._client_ids:
            raise InvalidToken("issued to another app client")
        return claims
