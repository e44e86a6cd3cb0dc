"""A live-updates client for tests: a real WebSocket connection whose messages are collected by a
thread, so a test can wait for what it expects and then check nothing else came."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

Message = dict[str, Any]


class LiveClient:
    def __init__(self, url: str) -> None:
        self._closing = ExitStack()
        self.connection: ClientConnection = self._closing.enter_context(
            connect(url, open_timeout=10, proxy=None)
        )
        self.messages: list[Message] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for frame in self.connection:
                assert isinstance(frame, str), "live messages are text frames"
                with self._changed:
                    self.messages.append(json.loads(frame))
                    self._changed.notify_all()
        except ConnectionClosed:
            pass

    def wait_for(self, expected: Callable[[list[Message]], bool], timeout: float = 15.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not expected(self.messages):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out; received so far: {self.messages}")
                self._changed.wait(remaining)
            return list(self.messages)

    def order_versions(self) -> set[tuple[str, int]]:
        """(order id, version) of every order.updated received: how clients de-duplicate."""
        return {(m["order_id"], m["version"]) for m in self.messages if m["type"] == "order.updated"}

    def close(self) -> None:
        self._closing.close()
        self._reader.join(timeout=5)


def has_order_version(order_id: str, version: int) -> Callable[[list[Message]], bool]:
    return lambda messages: any(
        m["type"] == "order.updated" and m["order_id"] == order_id and m["version"] >= version
        for m in messages
    )
