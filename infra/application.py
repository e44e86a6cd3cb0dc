"""Builds the app's stack and its checks; `app.py` and the tests both start here."""

from __future__ import annotations

from aws_cdk import App

from infra.nag import add_checks
from infra.settings import Settings
from infra.stack import OrdersStack


def stack_name(settings: Settings) -> str:
    return f"orders-{settings.stage}"


def build(app: App) -> OrdersStack:
    """Add the orders stack for the context's stage and the cdk-nag checks (errors fail synth).

    The stack is environment-agnostic (no account or region at synth): nothing is looked up, so
    `cdk synth` needs neither credentials nor network.
    """
    settings = Settings.from_node(app.node)
    stack = OrdersStack(
        app,
        stack_name(settings),
        settings=settings,
        description=f"Orders service ({settings.stage}): event store, projections, HTTP API",
    )
    add_checks(app)
    return stack
