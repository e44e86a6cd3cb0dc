"""`orders serve --no-projections`: the API alone, on moto, with the real handlers."""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from orders_local import cli
from orders_local.system import LocalSystem, default_workers
from orders_local.tokens import issue_token

SECRET = "no-projections-secret-that-is-32-bytes-or-more"
ORDER = {
    "items": [{"product_id": "sku-espresso", "quantity": 2, "unit_price": "12.50"}],
    "shipping_address": {"line1": "1 Canal St", "city": "Amsterdam", "postal_code": "1011", "country": "NL"},
}


def _request(url: str, token: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, method="POST" if data else "GET", data=data)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_serve_without_projections_answers_commands_and_queries_with_no_poller(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no external endpoint, and a stand-in for Ctrl-C that uses the API while it runs
    assert "AWS_ENDPOINT_URL" not in os.environ
    monkeypatch.setenv("ORDERS_LOCAL_JWT_SECRET", SECRET)
    systems: list[LocalSystem] = []
    seen: dict[str, Any] = {}
    threads_before = set(threading.enumerate())

    class RecordedSystem(LocalSystem):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs, table_prefix="no-projections-test")
            systems.append(self)

    def use_the_api_then_stop() -> None:
        (system,) = systems
        token = issue_token("alice", operator=False, secret=SECRET)
        seen["placed"] = _request(f"{system.url}/orders", token, ORDER)
        order_id = seen["placed"][1]["order_id"]
        seen["history"] = _request(f"{system.url}/orders/{order_id}/events", token)
        seen["mine"] = _request(f"{system.url}/customers/me/orders", token)
        seen["workers"], seen["watcher"] = system.workers, system.rebuild_watcher
        seen["new_threads"] = {t.name for t in set(threading.enumerate()) - threads_before}

    monkeypatch.setattr(cli, "LocalSystem", RecordedSystem)
    monkeypatch.setattr(cli, "_wait_for_stop_signal", use_the_api_then_stop)

    # When orders serve runs without projections
    code = cli.main(["serve", "--no-projections", "--port", "0", "--live-port", "0", "--workers", "2"])

    # Then the command and the query went through
    assert code == 0
    assert seen["placed"][0] == 201
    assert seen["history"][0] == 200
    assert seen["history"][1]["events"][0]["type"] == "OrderPlaced"
    # And the read model query answers, from a read model nothing fills
    assert seen["mine"][0] == 200 and seen["mine"][1]["orders"] == []
    # And no poller, projector or rebuild watcher ran
    assert seen["workers"] is None and seen["watcher"] is None
    assert not any(name.startswith(("stream-poller", "rebuild-status")) for name in seen["new_threads"])
    # And the banner said so
    out = capsys.readouterr().out
    assert "Read models     not running (--no-projections)" in out
    assert "Instances       2 per function (admin_api, command_api, query_api), a process each" in out
    assert "Failed batches" not in out


def test_help_for_serve_explains_no_projections_and_workers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", "--help"])
    assert exited.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--no-projections run the API alone: no stream poller feeds the read models" in help_text
    # And --workers, with the default it takes on this machine
    assert "--workers N instances per function, as Lambda runs them" in help_text
    assert f"(default: {default_workers()} on this machine" in help_text


def test_workers_must_be_zero_or_more(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", "--workers", "-1"])
    assert exited.value.code == 2
    assert "must be 0 (every function in this process) or more" in capsys.readouterr().err
    with pytest.raises(ValueError, match="workers"):
        LocalSystem(workers=-1, secret=SECRET)
