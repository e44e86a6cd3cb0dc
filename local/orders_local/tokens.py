"""Locally signed JWTs shaped like Cognito access tokens.

The deployed API trusts Cognito; locally there is no Cognito, so the gateway trusts tokens signed
with a shared HS256 secret instead. The claims mirror what the handlers read from a Cognito access
token (``sub``, ``cognito:groups``), so handler code is the same in both places.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

ISSUER = "orders-local"
CLIENT_ID = "orders-local-client"
OPERATORS_GROUP = "operators"
ALGORITHM = "HS256"
SECRET_ENV_VAR = "ORDERS_LOCAL_JWT_SECRET"


class InvalidToken(Exception):
    """The token must not be trusted; ``reason`` says why (for logs and the WWW-Authenticate header)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def issue_token(
    subject: str,
    *,
    operator: bool,
    secret: str,
    ttl_seconds: int = 3600,
    now: datetime | None = None,
) -> str:
    if not subject:
        raise ValueError("subject must not be empty")
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    issued_at = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": subject,
        "iss": ISSUER,
        # Cognito access tokens carry client_id rather than aud; we set both so either check works.
        "aud": CLIENT_ID,
        "client_id": CLIENT_ID,
        "token_use": "access",
        "username": subject,
        "iat": int(issued_at.timestamp()),
        "exp": int((issued_at + timedelta(seconds=ttl_seconds)).timestamp()),
    }
    if operator:
        claims["cognito:groups"] = [OPERATORS_GROUP]
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(token: str, *, secret: str) -> dict[str, Any]:
    """Return the claims of a token we issued, or raise InvalidToken."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as exc:
        raise InvalidToken("malformed token") from exc
    # Checked before decoding so that "alg: none" (and algorithm confusion) gets a clear reason.
    if header.get("alg") != ALGORITHM:
        raise InvalidToken(f"unsupported algorithm {header.get('alg')!r}")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            # The audience is checked below: Cognito access tokens may have client_id and no aud.
            options={"require": ["exp", "iat", "iss", "sub"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("token expired") from exc
    except jwt.InvalidSignatureError as exc:
        raise InvalidToken("bad signature") from exc
    except jwt.InvalidIssuerError as exc:
        raise InvalidToken("wrong issuer") from exc
    except jwt.ImmatureSignatureError as exc:
        raise InvalidToken("token not yet valid") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidToken(f"missing claim {exc.claim!r}") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidToken("malformed token") from exc
    audiences = claims.get("aud", [])
    audiences = [audiences] if isinstance(audiences, str) else list(audiences)
    if CLIENT_ID not in audiences and claims.get("client_id") != CLIENT_ID:
        raise InvalidToken("wrong audience")
    return claims


def load_or_create_secret(path: Path | None = None) -> str:
    """The signing secret shared by ``orders token`` and ``orders serve`` running as separate processes."""
    from_env = os.environ.get(SECRET_ENV_VAR, "").strip()
    if from_env:
        return from_env
    target = path or default_secret_path()
    if not target.exists():
        _create_secret_file(target)
    value = target.read_text(encoding="ascii").strip()
    if not value:
        raise RuntimeError(f"{target} is empty: delete it to generate a new secret")
    return value


def default_secret_path() -> Path:
    # Resolved per call, not at import, so a changed HOME (tests, sudo -E) is honoured.
    return Path.home() / ".orders-local" / "jwt-secret"


def _create_secret_file(target: Path) -> None:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkstemp creates the file 0600. It is hard-linked into place only when complete, and the link
    # fails if another process won the race, so nobody reads a half-written or replaced secret.
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".jwt-secret-")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as tmp:
            tmp.write(secrets.token_hex(32) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(tmp_name, target)
    finally:
        os.unlink(tmp_name)
