"""``orders login``: sign in to a deployed stack through its Cognito managed login, in the browser.

The CLI is a native app (RFC 8252): it opens the system browser at the authorization endpoint and
takes the answer on a loopback redirect (``http://localhost:8976/callback``, the CLI app client's
one callback URL, infra/auth.py), with the authorization code grant and PKCE (RFC 7636): no client
secret, and no password ever reaches the CLI. It prints the access token, as ``orders token`` does
for the local run, so that ``OPS=$(orders login ...)`` works; everything else goes to stderr.

The refresh token (12 hours for the CLI's client) is kept in a file only its owner can read, so
``orders login --refresh`` prints a new access token without the browser.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import http.server
import json
import os
import secrets
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import webbrowser
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_REDIRECT_URI = "http://localhost:8976/callback"
SCOPES = "openid email profile aws.cognito.signin.user.admin"
DEFAULT_TIMEOUT_SECONDS = 300.0
SIGN_IN_URL_ENV = "ORDERS_SIGN_IN_URL"
CLIENT_ID_ENV = "ORDERS_CLI_CLIENT_ID"
LOGIN_FILE_ENV = "ORDERS_LOGIN_FILE"
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

_SIGNED_IN_PAGE = (
    b"<!doctype html><title>orders: signed in</title>"
    b"<p>Signed in. You can close this tab and go back to the terminal.</p>"
)


class LoginFailed(Exception):
    """The sign-in did not give tokens; the message says why and what to do."""


@dataclass(frozen=True)
class Tokens:
    access_token: str
    id_token: str | None
    refresh_token: str | None
    expires_in: int

    @classmethod
    def from_token_endpoint(cls, answer: dict[str, Any]) -> Tokens:
        try:
            return cls(
                access_token=str(answer["access_token"]),
                id_token=answer.get("id_token"),
                refresh_token=answer.get("refresh_token"),
                expires_in=int(answer.get("expires_in", 3600)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LoginFailed(f"the token endpoint answered without an access token: {answer}") from exc


def pkce_pair() -> tuple[str, str]:
    """A code verifier (RFC 7636: 43 to 128 characters) and its S256 challenge."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(sign_in_url: str, client_id: str, redirect_uri: str, challenge: str, state: str) -> str:
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": SCOPES,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return f"{sign_in_url.rstrip('/')}/oauth2/authorize?{query}"


def sign_in(
    sign_in_url: str,
    client_id: str,
    *,
    redirect_uri: str = DEFAULT_REDIRECT_URI,
    open_browser: Callable[[str], object],
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Tokens:
    """Send the user to managed login with ``open_browser(url)``, wait for the code on the loopback
    redirect, and exchange it (with the PKCE verifier) for tokens."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(24)
    with _loopback_receiver(redirect_uri, state) as receiver:
        open_browser(authorize_url(sign_in_url, client_id, redirect_uri, challenge, state))
        code = receiver.wait(timeout)
    return _token_request(
        sign_in_url,
        {
            "grant_type": "authorization_code",
            "client_id": client_id,
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
    )


def refresh(sign_in_url: str, client_id: str, refresh_token: str) -> Tokens:
    """New tokens from a refresh token, without the browser (a new refresh token only if the client
    rotates them)."""
    return _token_request(
        sign_in_url, {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": refresh_token}
    )


def _token_request(sign_in_url: str, form: dict[str, str]) -> Tokens:
    request = urllib.request.Request(
        f"{sign_in_url.rstrip('/')}/oauth2/token",
        data=urllib.parse.urlencode(form).encode("ascii"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return Tokens.from_token_endpoint(json.loads(reply.read()))
    except urllib.error.HTTPError as error:
        raise LoginFailed(f"the token endpoint refused: {_oauth_error(error.read())}") from error
    except (urllib.error.URLError, OSError) as error:
        raise LoginFailed(f"cannot reach {sign_in_url}: {error}") from error
    except json.JSONDecodeError as error:
        raise LoginFailed("the token endpoint did not answer JSON") from error


def _oauth_error(body: bytes) -> str:
    try:
        answer = json.loads(body)
    except json.JSONDecodeError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(answer, dict) and "error" in answer:
        description = answer.get("error_description")
        return f"{answer['error']}" + (f" ({description})" if description else "")
    return str(answer)[:200]


class _Receiver:
    """What the loopback redirect brought: a code, or managed login's error."""

    def __init__(self, path: str, state: str) -> None:
        self.path = path
        self.state = state
        self._arrived = threading.Event()
        self._code: str | None = None
        self._error: str | None = None

    def answer(self, query: dict[str, list[str]]) -> tuple[int, bytes]:
        """The browser's request to the redirect URI: (status, page)."""
        if query.get("state", [""])[0] != self.state:
            # Not this sign-in's answer (another tab, a replay): refused, and the wait goes on.
            return 400, b"This is not the sign-in the terminal is waiting for."
        if "error" in query:
            description = query.get("error_description", [""])[0]
            self._error = query["error"][0] + (f" ({description})" if description else "")
            self._arrived.set()
            return 400, f"Sign-in failed: {self._error}".encode()
        if not query.get("code", [""])[0]:
            return 400, b"The redirect carried no code."
        self._code = query["code"][0]
        self._arrived.set()
        return 200, _SIGNED_IN_PAGE

    def wait(self, timeout: float) -> str:
        if not self._arrived.wait(timeout):
            raise LoginFailed(f"no sign-in arrived within {timeout:g} s (run the command again to retry)")
        if self._error is not None or self._code is None:
            raise LoginFailed(f"managed login answered {self._error}")
        return self._code


@contextlib.contextmanager
def _loopback_receiver(redirect_uri: str, state: str) -> Iterator[_Receiver]:
    parsed = urllib.parse.urlsplit(redirect_uri)
    if parsed.scheme != "http" or parsed.hostname not in ("localhost", "127.0.0.1") or not parsed.port:
        raise LoginFailed(f"the redirect URI must be http://localhost:PORT/..., not {redirect_uri}")
    receiver = _Receiver(parsed.path or "/", state)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path != receiver.path:
                status, page = 404, b"Not found."
            else:
                status, page = receiver.answer(urllib.parse.parse_qs(url.query))
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the terminal shows the token, not the browser's requests

    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", parsed.port), Handler)
    except OSError as error:
        raise LoginFailed(
            f"cannot listen on 127.0.0.1:{parsed.port} for the sign-in's redirect ({error.strerror}): "
            "stop what uses that port, or give --redirect-uri with another port that the CLI app "
            "client lists among its callback URLs"
        ) from error
    # A short poll: the command ends as soon as the code is in, not half a second later.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="orders-login-callback", daemon=True
    )
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- the command ------------------------------------------------------------------------------------


def default_login_file() -> Path:
    return Path(os.environ.get(LOGIN_FILE_ENV) or Path.home() / ".orders" / "login.json")


def save_login(path: Path, sign_in_url: str, client_id: str, refresh_token: str) -> None:
    """Only the owner may read it: the refresh token signs in as them for 12 hours."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an older file keeps its mode through O_CREAT
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump({"sign_in_url": sign_in_url, "client_id": client_id, "refresh_token": refresh_token}, file)


def load_login(path: Path) -> dict[str, str]:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise LoginFailed(f"no saved sign-in at {path}: run 'orders login' first") from error
    except (OSError, json.JSONDecodeError) as error:
        raise LoginFailed(f"cannot read the saved sign-in at {path}: {error}") from error
    if not isinstance(saved, dict) or not all(
        isinstance(saved.get(key), str) for key in ("sign_in_url", "client_id", "refresh_token")
    ):
        raise LoginFailed(f"{path} is not a saved sign-in: run 'orders login' again")
    return {key: saved[key] for key in ("sign_in_url", "client_id", "refresh_token")}


def add_command(commands: Any) -> None:
    login = commands.add_parser(
        "login",
        help="sign in to a deployed stack in the browser and print an access token",
        description=(
            "Sign in through the stack's Cognito managed login in the browser (authorization code "
            "with PKCE, answered on a loopback redirect; no password reaches the CLI) and print the "
            "access token, e.g. OPS=$(orders login); orders projections --api $API --token $OPS. "
            "The refresh token (12 hours) is saved for --refresh in a file only you can read. "
            "Against the local run there is nothing to sign in to: use 'orders token'."
        ),
    )
    login.add_argument(
        "--sign-in-url",
        default=os.environ.get(SIGN_IN_URL_ENV),
        metavar="URL",
        help=f"the stack's SignInUrl output (default: ${SIGN_IN_URL_ENV})",
    )
    login.add_argument(
        "--client-id",
        default=os.environ.get(CLIENT_ID_ENV),
        metavar="ID",
        help=f"the stack's UserPoolCliClientId output (default: ${CLIENT_ID_ENV})",
    )
    login.add_argument(
        "--redirect-uri",
        default=DEFAULT_REDIRECT_URI,
        metavar="URI",
        help="where managed login returns with the code: one of the CLI client's callback URLs "
        "(default: %(default)s)",
    )
    login.add_argument(
        "--no-browser",
        dest="browser",
        action="store_false",
        help="print the sign-in URL instead of opening a browser (open it on this machine yourself)",
    )
    login.add_argument(
        "--refresh",
        action="store_true",
        help="no browser: a new access token from the saved refresh token",
    )
    login.add_argument("--no-save", dest="save", action="store_false", help="keep no refresh token")
    login.add_argument(
        "--login-file",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"where the refresh token is kept (default: ${LOGIN_FILE_ENV}, else ~/.orders/login.json)",
    )
    login.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="how long to wait for the sign-in (default: %(default)g)",
    )
    login.set_defaults(login_parser=login)


def run(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.login_parser
    path = args.login_file or default_login_file()
    if args.timeout <= 0:
        parser.error("--timeout must be more than 0 seconds")
    try:
        if args.refresh:
            saved = load_login(path)
            tokens = refresh(saved["sign_in_url"], saved["client_id"], saved["refresh_token"])
            if tokens.refresh_token:
                save_login(path, saved["sign_in_url"], saved["client_id"], tokens.refresh_token)
        else:
            if not args.sign_in_url or not args.client_id:
                parser.error(
                    "give the stack's SignInUrl and UserPoolCliClientId outputs: --sign-in-url and "
                    f"--client-id (or ${SIGN_IN_URL_ENV} and ${CLIENT_ID_ENV}); docs/auth.md shows "
                    "how to read them"
                )
            tokens = sign_in(
                args.sign_in_url,
                args.client_id,
                redirect_uri=args.redirect_uri,
                open_browser=_opener(args.browser),
                timeout=args.timeout,
            )
            if args.save and tokens.refresh_token:
                save_login(path, args.sign_in_url, args.client_id, tokens.refresh_token)
                print(f"Signed in; refresh token saved to {path} (orders login --refresh)", file=sys.stderr)
    except LoginFailed as failure:
        print(f"orders login: {failure}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("orders login: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    # Only the token on stdout, as 'orders token' does.
    print(tokens.access_token)
    return 0


def _opener(use_browser: bool) -> Callable[[str], object]:
    def open_url(url: str) -> None:
        if use_browser and webbrowser.open(url):
            print(f"Opened the browser to sign in; waiting (Ctrl-C to give up).\n  {url}", file=sys.stderr)
        else:
            print(f"Open this URL in a browser on this machine to sign in:\n  {url}", file=sys.stderr)

    return open_url
