"""`orders login` against a stand-in for Cognito's managed login: the authorization endpoint that
redirects with a code, and the token endpoint that checks the PKCE verifier, as Cognito does."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import re
import socket
import stat
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from infra.settings import CLI_CALLBACK_URL
from orders_local import cli, login

CLIENT_ID = "cli-client-id"


@dataclass
class ManagedLogin:
    """Cognito's two endpoints, reduced to what a public client with PKCE meets."""

    url: str = ""
    redirect_uris: set[str] = field(default_factory=set)
    # What the user does at the sign-in page: None signs in, else the error to return with.
    refuse_with: str | None = None
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)  # code -> (challenge, redirect)
    issued: int = 0
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if query.get("client_id") != CLIENT_ID or query.get("redirect_uri") not in self.redirect_uris:
            return 400, {}, b"redirect_mismatch"
        if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256":
            return 400, {}, b"invalid_request"
        if "openid" not in query.get("scope", "").split():
            return 400, {}, b"invalid_scope"
        answer: dict[str, str] = {"state": query["state"]}
        if self.refuse_with:
            answer.update(error=self.refuse_with, error_description="the user said no")
        else:
            code = f"code-{len(self.codes)}"
            self.codes[code] = (query["code_challenge"], query["redirect_uri"])
            answer["code"] = code
        location = f"{query['redirect_uri']}?{urllib.parse.urlencode(answer)}"
        return 302, {"Location": location}, b""

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(form)
        if form.get("client_id") != CLIENT_ID:
            return 400, {"error": "invalid_client"}
        if form.get("grant_type") == "authorization_code":
            challenge, redirect = self.codes.pop(form.get("code", ""), ("", ""))
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if not challenge or challenge != computed or redirect != form.get("redirect_uri"):
                return 400, {"error": "invalid_grant"}
            return 200, self._tokens(refresh="refresh-1")
        if form.get("grant_type") == "refresh_token" and form.get("refresh_token") == "refresh-1":
            return 200, self._tokens(refresh=None)
        return 400, {"error": "invalid_grant", "error_description": "Refresh Token has expired"}

    def _tokens(self, refresh: str | None) -> dict[str, Any]:
        self.issued += 1
        tokens: dict[str, Any] = {
            "access_token": f"access-{self.issued}",
            "id_token": f"id-{self.issued}",
            "token_type": "Bearer",
            "expires_in": 3600,
        }
        if refresh:
            tokens["refresh_token"] = refresh
        return tokens


@pytest.fixture
def managed_login() -> Iterator[ManagedLogin]:
    stand_in = ManagedLogin()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            status, headers, body = (
                stand_in.authorize(query) if url.path == "/oauth2/authorize" else (404, {}, b"")
            )
            self._send(status, headers, body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            status, answer = stand_in.token(form) if self.path == "/oauth2/token" else (404, {})
            self._send(status, {"Content-Type": "application/json"}, json.dumps(answer).encode())

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield stand_in
    server.shutdown()
    server.server_close()


@pytest.fixture
def redirect_uri(managed_login: ManagedLogin) -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uri = f"http://localhost:{port}/callback"
    managed_login.redirect_uris.add(uri)
    return uri


class Browser:
    """Follows the sign-in URL as a browser would once the user has signed in: the authorization
    endpoint's redirect lands on the CLI's loopback server."""

    def __init__(self) -> None:
        self.opened: list[str] = []
        self.landed: list[tuple[int, str]] = []

    def __call__(self, url: str) -> bool:
        self.opened.append(url)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(url, timeout=10) as page:
                self.landed.append((page.status, page.read().decode()))
        except urllib.error.HTTPError as error:
            self.landed.append((error.code, error.read().decode()))
        return True


def test_the_cli_s_redirect_is_the_one_the_stack_registers() -> None:
    assert login.DEFAULT_REDIRECT_URI == CLI_CALLBACK_URL


def test_sign_in_exchanges_the_code_with_the_verifier_of_its_challenge(
    managed_login: ManagedLogin, redirect_uri: str
) -> None:
    browser = Browser()
    tokens = login.sign_in(managed_login.url, CLIENT_ID, redirect_uri=redirect_uri, open_browser=browser)
    assert (tokens.access_token, tokens.refresh_token) == ("access-1", "refresh-1")
    assert browser.landed == [(200, login._SIGNED_IN_PAGE.decode())]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(browser.opened[0]).query))
    assert query["scope"] == login.SCOPES and query["code_challenge_method"] == "S256"
    (exchange,) = managed_login.token_requests
    assert exchange["redirect_uri"] == redirect_uri and 43 <= len(exchange["code_verifier"]) <= 128
    assert "client_secret" not in exchange  # a public client


def test_an_answer_for_another_sign_in_is_refused_and_the_wait_goes_on(
    managed_login: ManagedLogin, redirect_uri: str
) -> None:
    strays: list[int] = []

    def browser(url: str) -> None:
        stray = f"{redirect_uri}?code=stolen&state=not-this-one"
        try:
            urllib.request.build_opener(urllib.request.ProxyHandler({})).open(stray, timeout=5)
        except urllib.error.HTTPError as error:
            strays.append(error.code)
        Browser()(url)

    tokens = login.sign_in(managed_login.url, CLIENT_ID, redirect_uri=redirect_uri, open_browser=browser)
    assert strays == [400] and tokens.access_token == "access-1"
    assert [request["code"] for request in managed_login.token_requests] == ["code-0"]


def test_a_refused_sign_in_says_what_managed_login_answered(
    managed_login: ManagedLogin, redirect_uri: str
) -> None:
    managed_login.refuse_with = "access_denied"
    with pytest.raises(login.LoginFailed, match=re.escape("access_denied (the user said no)")):
        login.sign_in(managed_login.url, CLIENT_ID, redirect_uri=redirect_uri, open_browser=Browser())
    assert managed_login.token_requests == []


def test_no_sign_in_within_the_timeout_fails_and_frees_the_port(redirect_uri: str) -> None:
    with pytest.raises(login.LoginFailed, match=re.escape("no sign-in arrived within 0.2 s")):
        login.sign_in(
            "http://127.0.0.1:9",
            CLIENT_ID,
            redirect_uri=redirect_uri,
            open_browser=lambda url: None,
            timeout=0.2,
        )
    port = urllib.parse.urlsplit(redirect_uri).port
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))  # the loopback server is gone


def test_a_busy_callback_port_gets_a_clear_error(managed_login: ManagedLogin, redirect_uri: str) -> None:
    port = urllib.parse.urlsplit(redirect_uri).port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(login.LoginFailed, match=f"cannot listen on 127.0.0.1:{port}"):
            login.sign_in(managed_login.url, CLIENT_ID, redirect_uri=redirect_uri, open_browser=Browser())


def test_orders_login_prints_only_the_token_keeps_the_refresh_token_private_and_refreshes(
    managed_login: ManagedLogin,
    redirect_uri: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    browser = Browser()
    monkeypatch.setattr(login.webbrowser, "open", browser)
    saved = tmp_path / "orders" / "login.json"
    common = ["--login-file", str(saved)]
    arguments = ["--sign-in-url", managed_login.url, "--client-id", CLIENT_ID, "--redirect-uri", redirect_uri]
    assert cli.main(["login", *arguments, *common]) == 0
    out, err = capsys.readouterr()
    assert out == "access-1\n" and "Opened the browser" in err and browser.landed[0][0] == 200
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text())["refresh_token"] == "refresh-1"

    assert cli.main(["login", "--refresh", *common]) == 0  # no browser
    assert capsys.readouterr().out == "access-2\n" and len(browser.opened) == 1
    assert managed_login.token_requests[-1]["grant_type"] == "refresh_token"


def test_orders_login_failures_say_why_on_stderr_and_print_no_token(
    managed_login: ManagedLogin,
    redirect_uri: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "none.json"
    assert cli.main(["login", "--refresh", "--login-file", str(missing)]) == login.EXIT_FAILED
    out, err = capsys.readouterr()
    assert out == "" and f"no saved sign-in at {missing}: run 'orders login' first" in err

    stale = tmp_path / "stale.json"
    login.save_login(stale, managed_login.url, CLIENT_ID, "refresh-expired")
    assert cli.main(["login", "--refresh", "--login-file", str(stale)]) == login.EXIT_FAILED
    out, err = capsys.readouterr()
    assert out == "" and "invalid_grant (Refresh Token has expired)" in err

    monkeypatch.delenv(login.SIGN_IN_URL_ENV, raising=False)
    with pytest.raises(SystemExit) as usage:
        cli.main(["login", "--client-id", CLIENT_ID])
    assert usage.value.code == 2 and "--sign-in-url" in capsys.readouterr().err


def test_no_browser_prints_the_url_to_open(
    managed_login: ManagedLogin, redirect_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    opener = login._opener(use_browser=False)
    tokens_box: list[login.Tokens] = []

    def follow_printed_url(url: str) -> None:
        opener(url)
        printed = capsys.readouterr().err.split()[-1]
        assert printed == url
        Browser()(printed)

    tokens_box.append(
        login.sign_in(
            managed_login.url, CLIENT_ID, redirect_uri=redirect_uri, open_browser=follow_printed_url
        )
    )
    assert tokens_box[0].access_token == "access-1"
