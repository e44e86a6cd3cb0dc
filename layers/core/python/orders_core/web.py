"""What every HTTP function shares: caller identity, request headers, problem+json errors.

Handlers stay thin: they parse with pydantic (Powertools validation), build one command,
call the application service, and let the exception handlers installed here map errors by
type to status codes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from orders_core.application.errors import IdempotencyKeyReused, StaleVersion
from orders_core.application.service import CommandContext
from orders_core.domain.errors import InvalidCommand, NotFound, RuleViolation
from orders_core.envelope import format_timestamp
from orders_core.errors import CommitTooLarge, ConcurrencyError, InvalidCommit
from orders_core.queries.errors import ViewNotCaughtUp
from orders_core.readmodels.port import InvalidCursor
from orders_core.rebuild.errors import RebuildsUnavailable

PROBLEM_JSON = "application/problem+json"
OPERATORS_GROUP = "operators"
CORRELATION_HEADER = "x-correlation-id"
_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_IF_MATCH = re.compile(r'(?:W/)?"?(\d{1,12})"?')


class Unauthorized(Exception):
    """No verified identity on the request."""


class Forbidden(Exception):
    """A verified caller without the role the route needs."""


class BadHeader(Exception):
    def __init__(self, header: str, message: str) -> None:
        super().__init__(message)
        self.header = header


class InvalidParameter(Exception):
    """A path or query parameter that cannot mean anything (not a date, two points in time)."""

    def __init__(self, message: str, *fields: str) -> None:
        super().__init__(message)
        self.fields = fields or ("query",)


@dataclass(frozen=True)
class Caller:
    user_id: str
    is_operator: bool


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[str]:
    return Response(
        status_code=status,
        content_type=PROBLEM_JSON,
        body=_problem_body(status, title, detail, errors),
        headers=dict(headers or {}),
    )


def _problem_body(status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None) -> str:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return json.dumps(body)


def _groups(raw: Any) -> set[str]:
    # API Gateway flattens array claims into a string such as "[operators admins]".
    if isinstance(raw, list):
        return {str(group) for group in raw}
    text = str(raw or "").strip().strip("[]")
    return {group for group in re.split(r"[\s,]+", text) if group}


def caller(app: APIGatewayHttpResolver) -> Caller:
    claims = app.current_event.request_context.authorizer.jwt_claim
    subject = str(claims.get("sub") or "")
    if not subject:
        raise Unauthorized("no verified identity on the request")
    return Caller(user_id=subject, is_operator=OPERATORS_GROUP in _groups(claims.get("cognito:groups")))


def require_operator(app: APIGatewayHttpResolver) -> Caller:
    who = caller(app)
    if not who.is_operator:
        raise Forbidden("this action is for operators")
    return who


def idempotency_key(app: APIGatewayHttpResolver) -> str | None:
    key = app.current_event.headers.get("idempotency-key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise BadHeader("Idempotency-Key", "Idempotency-Key must be 1 to 255 visible ASCII characters")
    return key


def order_id_from_path(raw: str) -> str:
    """The order id a path names; an id that is not a UUID names no order (404, as any unknown one)."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise NotFound(f"order {raw[:64]} not found") from None


def expected_version(app: APIGatewayHttpResolver) -> int | None:
    raw = app.current_event.headers.get("if-match")
    if raw is None or raw.strip() == "*":
        return None
    match = _IF_MATCH.fullmatch(raw.strip())
    if not match:
        raise BadHeader("If-Match", 'If-Match must be a version as given in ETag, such as "3"')
    return int(match.group(1))


def fingerprint(app: APIGatewayHttpResolver, who: Caller, payload: Any) -> str:
    """Identifies the request, so a reused Idempotency-Key with another request is caught."""
    event = app.current_event
    canonical = json.dumps(
        [event.request_context.http.method, event.raw_path, who.user_id, payload],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def command_context(
    app: APIGatewayHttpResolver,
    who: Caller,
    payload: Any,
    *,
    command_id: str | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> CommandContext:
    return CommandContext(
        command_id=command_id or idempotency_key(app) or str(uuid.uuid4()),
        correlation_id=str(app.context.get("correlation_id") or uuid.uuid4()),
        actor=who.user_id,
        recorded_at=format_timestamp(now()),
        fingerprint=fingerprint(app, who, payload),
        expected_version=expected_version(app),
    )


def _field_of(location: Any) -> str:
    parts = [str(part) for part in location]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    field = ""
    for part in parts:
        field += f"[{part}]" if part.isdigit() else (f".{part}" if field else part)
    return field or "body"


def _readable(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "json_invalid":
        return "the request body is not valid JSON"
    if kind == "missing":
        return "this field is required"
    if kind == "extra_forbidden":
        return "unknown field"
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


def _invalid_request(exc: RequestValidationError) -> Response[str]:
    errors = [{"field": _field_of(e.get("loc", ())), "message": _readable(e)} for e in exc.errors()]
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        message = "the request body is not valid JSON"
        return problem(422, "Invalid JSON", message, errors=[{"field": "body", "message": message}])
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return problem(422, "Invalid request", summary, errors=errors)


def _invalid_command(exc: InvalidCommand) -> Response[str]:
    errors = [{"field": exc.field, "message": str(exc)}] if exc.field else None
    return problem(422, "Invalid request", str(exc), errors=errors)


def _bad_header(exc: BadHeader) -> Response[str]:
    return problem(422, "Invalid header", str(exc), errors=[{"field": exc.header, "message": str(exc)}])


def _invalid_parameter(exc: InvalidParameter) -> Response[str]:
    errors = [{"field": field, "message": str(exc)} for field in exc.fields]
    return problem(422, "Invalid request", str(exc), errors=errors)


def _invalid_cursor(exc: InvalidCursor) -> Response[str]:
    return problem(422, "Invalid request", str(exc), errors=[{"field": "cursor", "message": str(exc)}])


def _not_caught_up(exc: ViewNotCaughtUp) -> Response[str]:
    return problem(503, "View not caught up", str(exc), headers={"Retry-After": "1"})


def _key_reused(exc: IdempotencyKeyReused) -> Response[str]:
    errors = [{"field": "Idempotency-Key", "message": str(exc)}]
    return problem(422, "Idempotency-Key reused", str(exc), errors=errors)


def _stale(exc: StaleVersion) -> Response[str]:
    return problem(412, "Precondition failed", str(exc), headers={"ETag": f'"{exc.actual}"'})


def _simple(status: int, title: str, detail: str | None = None) -> Callable[[Exception], Response[str]]:
    def answer(exc: Exception) -> Response[str]:
        return problem(status, title, detail or str(exc))

    return answer


_PROBLEMS: tuple[tuple[type[Exception], Callable[[Any], Response[str]]], ...] = (
    (RequestValidationError, _invalid_request),
    (InvalidCommand, _invalid_command),
    (BadHeader, _bad_header),
    (InvalidParameter, _invalid_parameter),
    (InvalidCursor, _invalid_cursor),
    (ViewNotCaughtUp, _not_caught_up),
    (RebuildsUnavailable, _simple(503, "Rebuilds unavailable")),
    (IdempotencyKeyReused, _key_reused),
    (StaleVersion, _stale),
    (NotFound, _simple(404, "Not found")),
    (RuleViolation, _simple(409, "Conflict")),
    (
        ConcurrencyError,
        _simple(409, "Concurrent modification", "the order changed while this command ran; retry"),
    ),
    (CommitTooLarge, _simple(413, "Too large")),
    (InvalidCommit, _simple(422, "Invalid request")),
    (Unauthorized, _simple(401, "Unauthorized")),
    (Forbidden, _simple(403, "Forbidden")),
)


def install_problem_handlers(app: APIGatewayHttpResolver) -> None:
    """Map every error type a handler can meet to its status code, as problem+json."""
    for error_type, answer in _PROBLEMS:
        app.exception_handler(error_type)(answer)
    app.not_found(_simple(404, "Not found", "no such resource"))


def _correlation_id(headers: Mapping[str, str]) -> str:
    supplied = headers.get(CORRELATION_HEADER, "")
    # A malformed id is replaced rather than refused: tracing must never fail a request.
    return supplied if _CORRELATION_ID.fullmatch(supplied) else str(uuid.uuid4())


def _needs_json(event: Mapping[str, Any]) -> bool:
    method = event.get("requestContext", {}).get("http", {}).get("method", "")
    return method in {"POST", "PUT", "PATCH"}


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _raw_problem(
    status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """A problem answer built before the resolver runs (it would fail on these requests)."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": PROBLEM_JSON},
        "body": _problem_body(status, title, detail, errors),
        "isBase64Encoded": False,
    }


def _unreadable_body(event: Mapping[str, Any]) -> str | None:
    """Why the body cannot even be parsed (the resolver would crash rather than answer 422)."""
    body = event.get("body")
    if body is None:
        return None
    try:
        text = base64.b64decode(body).decode("utf-8") if event.get("isBase64Encoded") else str(body)
    except (ValueError, UnicodeDecodeError):
        return "the request body is not UTF-8 text"
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return None  # the resolver answers these itself, with the position of the error
    except RecursionError:
        return "the request body nests too deeply"
    except ValueError:
        return "the request body holds a number too long to read"
    return None


def handle(
    app: APIGatewayHttpResolver, event: dict[str, Any], context: Any, *, logger: Logger | None = None
) -> dict[str, Any]:
    """Run one API Gateway v2 event through `app`, with correlation id and content-type checks.

    With a `logger`, every line it writes for the rest of the request carries the correlation
    id, and the request ends with one "request handled" line (route, status, duration).
    """
    started = time.monotonic()
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    correlation_id = _correlation_id(headers)
    route = str(event.get("routeKey", ""))
    if logger is not None:
        logger.set_correlation_id(correlation_id)
    unreadable = _unreadable_body(event) if _needs_json(event) else None
    if _needs_json(event) and not _is_json(headers.get("content-type", "")):
        response = _raw_problem(415, "Unsupported media type", "send the request body as application/json")
    elif unreadable is not None:
        errors = [{"field": "body", "message": unreadable}]
        response = _raw_problem(422, "Invalid JSON", unreadable, errors)
    else:
        app.context["correlation_id"] = correlation_id
        try:
            response = app.resolve(event, context)
        except Exception:
            if logger is not None:
                logger.exception("request failed", route=route)
            raise
    response.setdefault("headers", {})
    response["headers"]["X-Correlation-Id"] = correlation_id
    if logger is not None:
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        logger.info("request handled", route=route, status=response["statusCode"], duration_ms=duration_ms)
    return response
