"""The ``orders`` command line, driven through main()."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from orders_local.cli import load_cors_origins, main
from orders_local.system import DEFAULT_CORS_ORIGINS
from orders_local.tokens import verify_token

SECRET = "cli-test-secret-that-is-at-least-32-bytes"


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_LOCAL_JWT_SECRET", SECRET)


def test_token_for_a_customer_prints_only_a_token_that_verifies(capsys: pytest.CaptureFixture[str]) -> None:
    # When a customer token is requested
    code = main(["token", "--customer", "alice", "--ttl", "90"])

    # Then stdout holds just the token, and it verifies with the shared secret
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("\n") == 1
    claims = verify_token(out.strip(), secret=SECRET)
    assert claims["sub"] == "alice"
    assert claims["exp"] - claims["iat"] == 90
    assert "cognito:groups" not in claims


def test_token_for_an_operator_has_the_group_and_subject(capsys: pytest.CaptureFixture[str]) -> None:
    # When an operator token is requested with a name
    assert main(["token", "--operator", "--subject", "olga"]) == 0

    # Then
    claims = verify_token(capsys.readouterr().out.strip(), secret=SECRET)
    assert claims["sub"] == "olga"
    assert claims["cognito:groups"] == ["operators"]


def test_token_without_env_secret_uses_a_file_in_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no secret in the environment and an empty home directory
    monkeypatch.delenv("ORDERS_LOCAL_JWT_SECRET")
    monkeypatch.setenv("HOME", str(tmp_path))

    # When a token is requested
    assert main(["token", "--customer", "bob"]) == 0

    # Then the secret was created under ~/.orders-local and signs the token
    secret = (tmp_path / ".orders-local" / "jwt-secret").read_text().strip()
    assert verify_token(capsys.readouterr().out.strip(), secret=secret)["sub"] == "bob"


@pytest.mark.parametrize(
    "argv",
    [
        ["token"],
        ["token", "--customer", "alice", "--operator"],
        ["token", "--customer", "alice", "--subject", "x"],
        ["token", "--customer", "alice", "--ttl", "0"],
        ["token", "--customer", ""],
        ["serve", "--port", "70000"],
        ["rebuild"],
        ["rebuild", "inventory", "--release", "inventory"],
        [],
    ],
)
def test_bad_arguments_exit_with_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # When / Then argparse rejects the command line with exit code 2 and says why on stderr
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["serve", "--help"], "AWS_ENDPOINT_URL"),
        (["token", "--help"], "--customer"),
        (["rebuild", "--help"], "--release PROJECTION"),
        (["--help"], "serve"),
    ],
)
def test_help_explains_each_command(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    assert expected in capsys.readouterr().out


def test_serve_on_a_busy_port_exits_2_with_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    # Given another program listening on the port
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]

        # When serve is asked to use it
        code = main(["serve", "--port", str(port), "--live-port", "0"])

    # Then it exits 2 with a one-line explanation and no traceback
    err = capsys.readouterr().err
    assert code == 2
    assert f"port {port}" in err and "already in use" in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_cors_origins_come_from_cdk_json_context(tmp_path: Path) -> None:
    # Given a cdk.json two directories up with the context key
    (tmp_path / "cdk.json").write_text(
        json.dumps({"app": "python app.py", "context": {"corsAllowedOrigins": ["https://shop.example"]}})
    )
    start = tmp_path / "a" / "b"
    start.mkdir(parents=True)

    # When the origins are looked up from below it
    origins, source = load_cors_origins([start])

    # Then they are the configured ones
    assert origins == ["https://shop.example"]
    assert source == str(tmp_path / "cdk.json")


def test_cors_origins_default_to_localhost_3000(tmp_path: Path) -> None:
    # Given a cdk.json without the key
    (tmp_path / "cdk.json").write_text(json.dumps({"context": {}}))

    # When / Then the built-in defaults apply
    origins, source = load_cors_origins([tmp_path])
    assert origins == list(DEFAULT_CORS_ORIGINS)
    assert source == "built-in defaults"


def test_release_asks_the_admin_api_and_says_what_was_released(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from orders_local import operator_cli

    asked: list[tuple[str, str, object]] = []

    def call(self: object, method: str, path: str, body: object = None) -> object:
        asked.append((method, path, body))
        return {
            "projection": "inventory",
            "rebuild_id": "20261129T100000-inventory-ab12",
            "generation": 4,
            "execution_status": "ABORTED",
            "released": True,
            "status": "FAILED",
        }

    monkeypatch.setattr(operator_cli.AdminClient, "call", call)
    assert main(["rebuild", "--release", "inventory"]) == 0
    assert asked == [("POST", "/admin/rebuilds/release", {"projection": "inventory"})]
    out = capsys.readouterr().out
    assert "20261129T100000-inventory-ab12" in out and "generation 4 dropped" in out
