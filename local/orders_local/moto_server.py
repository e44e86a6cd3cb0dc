"""Start moto's server in-process, and make its DynamoDB conditional writes atomic."""

from __future__ import annotations

import errno
import functools
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar, cast

from moto.dynamodb.models import DynamoDBBackend
from moto.server import ThreadedMotoServer

_F = TypeVar("_F", bound=Callable[..., Any])

# Every backend method that can check a condition and then write. moto's batch_write_item on the
# backend is a stub (the response layer calls put_item/delete_item per request), so it is covered
# twice over; the PartiQL entry points write through their own code paths and need the lock too.
DYNAMODB_WRITE_METHODS = (
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "batch_write_item",
    "execute_statement",
    "execute_transaction",
    "batch_execute_statement",
)

# Re-entrant because transact_write_items and the PartiQL methods may call put_item and friends.
_WRITE_LOCK = threading.RLock()
_INSTALL_LOCK = threading.Lock()
_LOCKED_MARKER = "__orders_local_write_lock__"


def install_dynamodb_write_lock() -> None:
    """Serialize moto's DynamoDB writes process-wide; calling it again changes nothing.

    moto evaluates a ConditionExpression and stores the item without holding any lock, so two
    threads can both pass ``attribute_not_exists`` on the same key. DynamoDB never allows that, and
    the optimistic-concurrency code of the event store depends on it not happening.
    """
    with _INSTALL_LOCK:
        for name in DYNAMODB_WRITE_METHODS:
            method = getattr(DynamoDBBackend, name, None)
            if method is None or getattr(method, _LOCKED_MARKER, False):
                continue
            setattr(DynamoDBBackend, name, _locked(method))


def dynamodb_write_lock_installed() -> bool:
    present = [
        getattr(DynamoDBBackend, name) for name in DYNAMODB_WRITE_METHODS if hasattr(DynamoDBBackend, name)
    ]
    return bool(present) and all(getattr(method, _LOCKED_MARKER, False) for method in present)


def _locked(method: _F) -> _F:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _WRITE_LOCK:
            return method(*args, **kwargs)

    setattr(wrapper, _LOCKED_MARKER, True)
    return cast(_F, wrapper)


def start_moto(
    port: int = 0, *, host: str = "127.0.0.1", timeout_seconds: float = 10.0
) -> tuple[ThreadedMotoServer, str]:
    """Start moto on ``host:port`` (port 0: any free port) and return it once it answers HTTP."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if port:
        # ThreadedMotoServer.start() waits forever if its thread cannot bind, so fail first here.
        _ensure_port_free(host, port)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    endpoint_url = f"http://{bound_host}:{bound_port}"
    try:
        _wait_until_serving(endpoint_url, timeout_seconds)
    except BaseException:
        server.stop()
        raise
    return server, endpoint_url


def _ensure_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Same option the werkzeug server sets, so a port in TIME_WAIT is not reported as busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(errno.EADDRINUSE, f"port {port} on {host} is already in use") from exc
            raise


def _wait_until_serving(endpoint_url: str, timeout_seconds: float) -> None:
    # start() returns once the socket is bound, before the serving loop runs; the first request
    # after that can still fail, so poll a cheap static page until one succeeds.
    deadline = time.monotonic() + timeout_seconds
    last_error: Exception | None = None
    # A configured HTTP proxy must not see requests meant for localhost.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        try:
            with opener.open(f"{endpoint_url}/moto-api/", timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last_error = exc
        time.sleep(0.05)
    raise TimeoutError(f"moto at {endpoint_url} did not answer within {timeout_seconds} s: {last_error}")
