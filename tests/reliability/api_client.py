"""A small HTTP client for the local API: raw control over path, headers and body bytes."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    raw: bytes
    seconds: float

    @property
    def json(self) -> Any:
        return json.loads(self.raw) if self.raw else None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip()

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def call(
    base_url: str,
    method: str,
    path: str,
    *,
    body: Any = None,
    raw: bytes | None = None,
    token: str | None = None,
    headers: Mapping[str, str | bytes] | None = None,
    content_type: str | None = "application/json",
    timeout: float = 120.0,
) -> Reply:
    """One request on a fresh connection. `body` is sent as JSON; `raw` as given (no JSON)."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    payload: bytes | None = (
        raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    )
    all_headers: dict[str, str | bytes] = {}
    if payload is not None and content_type is not None:
        all_headers["Content-Type"] = content_type
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    all_headers.update(headers or {})
    started = time.monotonic()
    try:
        connection.request(method, path, body=payload, headers=all_headers)
        response = connection.getresponse()
        data = response.read()
        seconds = time.monotonic() - started
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data, seconds)
    finally:
        connection.close()
