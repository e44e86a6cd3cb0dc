"""The ``orders`` command: run the service locally, mint tokens for it, operate it, and sign in to a
deployed stack."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import FrameType

from orders_core.api_routes import ROUTES
from orders_core.projections.registry import NAMES
from orders_local import events_cli, login, operator_cli
from orders_local.live_server import DEFAULT_LIVE_PORT, LivePortInUse
from orders_local.system import (
    DEFAULT_CORS_ORIGINS,
    CannotListen,
    LocalSystem,
    PortInUse,
    UnsupportedEndpoint,
    default_workers,
)
from orders_local.tokens import issue_token, load_or_create_secret

EXIT_USAGE = 2
CORS_CONTEXT_KEY = "corsAllowedOrigins"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "token":
        if args.subject is not None and not args.operator:
            parser.error("--subject only goes with --operator (a customer's subject is the --customer ID)")
        if not (args.customer if args.customer is not None else (args.subject or "operator")).strip():
            parser.error("the subject must not be empty")
    if args.command == "rebuild" and (args.projection is None) == (args.release is None):
        parser.error("name one projection: to rebuild it, or to release it with --release")
    if args.command == "serve":
        return _serve(args)
    if args.command in ("rebuild", "rebuilds", "projections", "failures", "replay-failures"):
        return operator_cli.run(args)
    if args.command == "events":
        return events_cli.run(args)
    if args.command == "login":
        return login.run(args)
    return _token(args)


# -- token ------------------------------------------------------------------------------------------


def _token(args: argparse.Namespace) -> int:
    subject = args.customer if args.customer is not None else (args.subject or "operator")
    token = issue_token(subject, operator=args.operator, secret=load_or_create_secret(), ttl_seconds=args.ttl)
    # Only the token, so that $(orders token ...) can be pasted into an Authorization header.
    print(token)
    return 0


# -- serve ------------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("orders_local").setLevel(logging.INFO)
    cors_origins, cors_source = load_cors_origins()
    system = LocalSystem(
        host=args.host,
        port=args.port,
        cors_origins=cors_origins,
        projections=args.projections,
        workers=args.workers,
        live_port=args.live_port,
    )
    try:
        system.start()
    except PortInUse as exc:
        print(f"orders serve: {exc.strerror}; stop the other process or pick another --port", file=sys.stderr)
        return EXIT_USAGE
    except LivePortInUse as exc:
        print(
            f"orders serve: {exc.strerror}; stop the other process or pick another --live-port",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except CannotListen as exc:
        print(f"orders serve: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except UnsupportedEndpoint as exc:
        print(f"orders serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("orders serve: interrupted while starting", file=sys.stderr)
        return 130

    try:
        backend = "moto, in this process" if system.moto_started else "external, from AWS_ENDPOINT_URL"
        tables = ", ".join(f"{key}={name}" for key, name in system.table_names.items())
        print(f"Orders API      {system.url}")
        print(f"AWS endpoint    {system.endpoint_url} ({backend})")
        print(f"Tables          {tables}")
        print(f"CORS origins    {', '.join(cors_origins)} (from {cors_source})")
        print(f"Instances       {_instances_line(system)}")
        if system.workers is not None:
            where = ", in a process of its own" if system.workers.process is not None else ""
            print(f"Read models     {', '.join(NAMES)} (one projector follows the events stream{where})")
            print("Parked commits  orders failures; orders replay-failures [--projection NAME]")
            print(f"Failed batches  {system.workers.failure_queue_url}")
        if not args.projections:
            print("Read models     not running (--no-projections): they stay empty, rebuilds are off")
        if system.stream_readers is not None and system.stream_readers.bus is not None:
            bus = system.stream_readers.bus
            print(
                f"Event bus       {bus.bus_name} (archive {bus.archive_name}); follow: orders events --follow"
            )
        if system.live is not None:
            print(f"Live updates    {system.live_url}?token=<jwt>   (order.updated, inventory.low)")
        print("Get a token     orders token --customer alice   (or: orders token --operator)")
        print(
            f'Try             curl -H "Authorization: Bearer $(orders token --customer alice)" '
            f"{system.url}/customers/me/orders"
        )
        print("Press Ctrl-C to stop.", flush=True)
        _wait_for_stop_signal()
    finally:
        system.stop()
    print("Stopped.", flush=True)
    return 0


def _instances_line(system: LocalSystem) -> str:
    count = system.instances_per_function
    if not count:
        return "every function in this process, one request at a time (--workers 0)"
    functions = ", ".join(sorted({route.function for route in ROUTES}))
    return f"{count} per function ({functions}), a process each (--workers; default {default_workers()})"


def _wait_for_stop_signal() -> None:
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Signal handlers can only be installed from the main thread (not, say, from a test's thread);
    # elsewhere Ctrl-C still arrives as KeyboardInterrupt.
    if threading.current_thread() is not threading.main_thread():
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        return
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # A timeout keeps the wait short enough for the interpreter to run the handler promptly.
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def load_cors_origins(starts: Iterable[Path] | None = None) -> tuple[list[str], str]:
    """The CORS origins the deployed API allows (cdk.json context), and where they came from."""
    for cdk_json in _candidate_cdk_json(starts or (Path(__file__).resolve().parent, Path.cwd())):
        try:
            context = json.loads(cdk_json.read_text(encoding="utf-8")).get("context", {})
        except (OSError, ValueError, AttributeError):
            continue
        origins = context.get(CORS_CONTEXT_KEY) if isinstance(context, dict) else None
        if isinstance(origins, list) and origins and all(isinstance(o, str) for o in origins):
            return list(origins), str(cdk_json)
    return list(DEFAULT_CORS_ORIGINS), "built-in defaults"


def _candidate_cdk_json(starts: Iterable[Path]) -> Iterable[Path]:
    seen: set[Path] = set()
    for start in starts:
        for directory in (start, *start.parents):
            candidate = directory / "cdk.json"
            if candidate not in seen and candidate.is_file():
                seen.add(candidate)
                yield candidate


# -- argument parsing -------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (every function in this process) or more")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535 (0: any free port)")
    return value


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orders",
        description=(
            "Run the order service locally (moto and a local API Gateway), mint tokens for it, and operate "
            "its read models (rebuilds)."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the HTTP API locally",
        description=(
            "Serve the HTTP API the way API Gateway does in front of the Lambda handlers. DynamoDB is an "
            "in-process moto server unless AWS_ENDPOINT_URL points at another endpoint, which also needs "
            "DynamoDB Streams and SQS for the read models (else add --no-projections). The tables are "
            "created if missing. Requests need a token from 'orders token'. CORS origins come from "
            f"cdk.json's '{CORS_CONTEXT_KEY}' context (else localhost:3000). Stop with Ctrl-C or SIGTERM."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument(
        "--port",
        type=_port,
        default=8000,
        help="port to listen on, 0 for any free one (default: %(default)s)",
    )
    serve.add_argument(
        "--workers",
        type=_workers,
        default=default_workers(),
        metavar="N",
        help=(
            "instances per function, as Lambda runs them: each a process of its own that handles one "
            "request at a time with its own warm cache, so a request that waits (GET /orders/{id}"
            "?min_version=...) holds up no other client; a request that finds every instance busy "
            "waits for one. 0 runs every function in this process, one request at a time "
            "(default: %(default)s on this machine: twice its cores, 2 to 8)"
        ),
    )
    serve.add_argument(
        "--live-port",
        type=_port,
        default=DEFAULT_LIVE_PORT,
        help=(
            "port of the live updates WebSocket, ws://HOST:PORT/?token=<jwt>: order.updated to an order's "
            "owner, inventory.low to operators (0: any free port; default: %(default)s)"
        ),
    )
    serve.add_argument(
        "--no-projections",
        dest="projections",
        action="store_false",
        help=(
            "run the API alone: no stream poller feeds the read models and there is no rebuild workflow, "
            "so commands and order histories work but the other queries answer from read models that "
            "stay empty (needs no DynamoDB Streams or SQS, e.g. on DynamoDB Local)"
        ),
    )

    token = commands.add_parser(
        "token",
        help="print a token for the local API",
        description=(
            "Print a signed access token (HS256, Cognito-like claims) that 'orders serve' accepts, and "
            "nothing else, so it can be used as: "
            'curl -H "Authorization: Bearer $(orders token --customer alice)" ... '
            "The signing secret is ORDERS_LOCAL_JWT_SECRET, else ~/.orders-local/jwt-secret "
            "(created on first use)."
        ),
    )
    who = token.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer", metavar="ID", help="a customer's token; ID becomes the 'sub' claim")
    who.add_argument(
        "--operator", action="store_true", help="an operator's token (member of the 'operators' group)"
    )
    token.add_argument(
        "--subject", metavar="NAME", help="with --operator: the operator's 'sub' claim (default: operator)"
    )
    token.add_argument(
        "--ttl",
        type=_positive_int,
        default=3600,
        metavar="SECONDS",
        help="lifetime of the token in seconds (default: %(default)s)",
    )
    operator_cli.add_commands(commands)
    events_cli.add_commands(commands)
    login.add_command(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
