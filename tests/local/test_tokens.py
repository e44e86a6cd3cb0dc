"""Locally signed tokens: what the local gateway accepts and rejects."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from orders_local.tokens import (
    CLIENT_ID,
    ISSUER,
    InvalidToken,
    issue_token,
    load_or_create_secret,
    verify_token,
)

SECRET = "a-test-secret-that-is-at-least-32-bytes-long"


def test_customer_token_round_trips_with_cognito_like_claims() -> None:
    # Given a token issued for a customer at a known time
    issued_at = datetime.now(UTC).replace(microsecond=0)
    token = issue_token("alice", operator=False, secret=SECRET, ttl_seconds=120, now=issued_at)

    # When it is verified with the same secret
    claims = verify_token(token, secret=SECRET)

    # Then the claims are the ones a Cognito access token carries, without the operators group
    assert claims["sub"] == "alice"
    assert claims["iss"] == ISSUER
    assert claims["client_id"] == CLIENT_ID
    assert claims["aud"] == CLIENT_ID
    assert claims["token_use"] == "access"
    assert claims["exp"] - claims["iat"] == 120
    assert claims["iat"] == int(issued_at.timestamp())
    assert "cognito:groups" not in claims


def test_operator_token_carries_the_operators_group() -> None:
    # Given an operator's token
    token = issue_token("olga", operator=True, secret=SECRET)

    # When it is verified
    claims = verify_token(token, secret=SECRET)

    # Then the operators group is present as a list, as Cognito puts it
    assert claims["cognito:groups"] == ["operators"]


def test_expired_token_is_rejected() -> None:
    # Given a token whose one-minute lifetime ended an hour ago
    token = issue_token(
        "alice", operator=False, secret=SECRET, ttl_seconds=60, now=datetime.now(UTC) - timedelta(hours=1)
    )

    # When / Then verification fails, saying why
    with pytest.raises(InvalidToken) as raised:
        verify_token(token, secret=SECRET)
    assert raised.value.reason == "token expired"


def test_token_signed_with_another_secret_is_rejected() -> None:
    # Given a token signed with some other secret
    token = issue_token("mallory", operator=True, secret="another-secret-that-is-also-32-bytes-long")

    # When / Then
    with pytest.raises(InvalidToken) as raised:
        verify_token(token, secret=SECRET)
    assert raised.value.reason == "bad signature"


def test_unsigned_alg_none_token_is_rejected() -> None:
    # Given a token with valid-looking claims but "alg": "none" and no signature
    now = int(datetime.now(UTC).timestamp())
    claims = {"sub": "mallory", "iss": ISSUER, "client_id": CLIENT_ID, "iat": now, "exp": now + 600}
    token = jwt.encode(claims, "", algorithm="none")

    # When / Then it is refused for its algorithm
    with pytest.raises(InvalidToken) as raised:
        verify_token(token, secret=SECRET)
    assert "algorithm" in raised.value.reason


def test_token_from_another_issuer_is_rejected() -> None:
    # Given a correctly signed token from some other issuer
    now = int(datetime.now(UTC).timestamp())
    claims = {"sub": "alice", "iss": "someone-else", "client_id": CLIENT_ID, "iat": now, "exp": now + 600}
    token = jwt.encode(claims, SECRET, algorithm="HS256")

    # When / Then
    with pytest.raises(InvalidToken) as raised:
        verify_token(token, secret=SECRET)
    assert raised.value.reason == "wrong issuer"


def test_token_for_another_client_is_rejected() -> None:
    # Given a correctly signed token of our issuer, meant for another app client
    now = int(datetime.now(UTC).timestamp())
    claims = {"sub": "alice", "iss": ISSUER, "client_id": "other-client", "iat": now, "exp": now + 600}
    token = jwt.encode(claims, SECRET, algorithm="HS256")

    # When / Then
    with pytest.raises(InvalidToken) as raised:
        verify_token(token, secret=SECRET)
    assert raised.value.reason == "wrong audience"


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c", "Bearer x.y.z"])
def test_malformed_token_is_rejected(garbage: str) -> None:
    # When / Then something that is not a JWT raises the same single exception type
    with pytest.raises(InvalidToken):
        verify_token(garbage, secret=SECRET)


def test_secret_from_the_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given the environment variable is set
    monkeypatch.setenv("ORDERS_LOCAL_JWT_SECRET", "from-the-environment")
    secret_file = tmp_path / "jwt-secret"

    # When the secret is loaded
    secret = load_or_create_secret(secret_file)

    # Then the variable is used and no file is written
    assert secret == "from-the-environment"
    assert not secret_file.exists()


def test_secret_file_is_created_private_and_reused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given no environment variable and no secret file yet
    monkeypatch.delenv("ORDERS_LOCAL_JWT_SECRET", raising=False)
    secret_file = tmp_path / "nested" / "jwt-secret"

    # When two "processes" load the secret one after the other
    first = load_or_create_secret(secret_file)
    second = load_or_create_secret(secret_file)

    # Then they agree, the secret is 32 random bytes in hex, and only the owner can read the file
    assert first == second
    assert len(first) == 64
    int(first, 16)
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert [p.name for p in secret_file.parent.iterdir()] == ["jwt-secret"]
