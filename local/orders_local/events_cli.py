"""`orders events [--follow] [--json]`: what the local run published on its event bus.

It reads the followers' queue of a running `orders serve` (orders_local.integration_events), which
says where that queue is in `~/.orders-local/integration-events.json` while it runs. Each event is
one line, `<recorded_at> <type> <stream> v<version> <event_id> correlation=<id>`, or with --json the
event as a rule's target receives it. Without --follow it prints what is waiting and ends; with it,
it waits for more until Ctrl-C. What it prints it takes off the queue: one follower at a time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from orders_local.integration_events import LocalBus, default_state_file, follow


def add_commands(commands: Any) -> None:
    events = commands.add_parser(
        "events",
        help="print the integration events published on the local event bus",
        description=(
            "Print the integration events `orders serve` published on its event bus (source orders, "
            "detail-type the event type), one line each: recorded_at, type, stream, version, event_id "
            "and correlation id. Without --follow, print what is waiting and stop; with --follow, "
            "keep printing as events are published, until Ctrl-C. Printed events are taken off the "
            "followers' queue, so run one follower at a time."
        ),
    )
    events.add_argument("--follow", "-f", action="store_true", help="keep printing until Ctrl-C")
    events.add_argument(
        "--json", action="store_true", help="print each event's JSON, as a rule's target receives it"
    )
    events.add_argument(
        "--state-file",
        type=Path,
        help=f"where `orders serve` says where its bus is (default: {default_state_file()})",
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    # Looked up when called, not bound at import: tests (and callers) that swap sys.stdout see it.
    out = out or sys.stdout
    state_file: Path = args.state_file or default_state_file()
    try:
        bus = LocalBus.read(state_file)
    except FileNotFoundError:
        print(
            f"orders events: no local event bus ({state_file} is missing): is `orders serve` running?",
            file=sys.stderr,
        )
        return 1
    try:
        follow(bus, out, keep_following=args.follow, as_json=args.json)
    except KeyboardInterrupt:
        return 0
    except (BotoCoreError, ClientError) as error:  # serve stopped without removing its state file
        print(
            f"orders events: cannot read {bus.queue_url}: {error} (is `orders serve` still running?)",
            file=sys.stderr,
        )
        return 1
    return 0
