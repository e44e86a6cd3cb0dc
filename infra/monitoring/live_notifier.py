"""Live updates (ADR 14): the notifier reads the order view's and inventory's streams and pushes
their changes to connected clients. Alarms on its lag and on the records it gave up on; graphs of
its lag, its invocations against its errors and gave-ups, what it told (its own metrics), and of
the WebSocket API's connections, messages and errors (what clients saw)."""

from __future__ import annotations

from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.monitoring.common import (
    ONE_MINUTE,
    Concern,
    Thresholds,
    alarm_on_stream_reader,
    iterator_age,
    service_metric,
)
from orders_core.live import notifier as live

# The notifier's own metrics (EMF, orders_core.live.notifier), by the label the graph shows.
TOLD = {
    live.UPDATES_ANNOUNCED: "order versions announced",
    live.ALERTS_RAISED: "inventory alerts raised",
    live.MESSAGES_DELIVERED: "messages delivered",
}
NOT_TOLD = {
    live.CONNECTIONS_GONE: "connections gone",
    live.CHANGES_NOT_PUSHED: "changes given back to the stream",
}
# API Gateway's WebSocket metrics (dimensions ApiId and Stage), by the label the graph shows.
WEBSOCKET_TRAFFIC = {"ConnectCount": "connects", "MessageCount": "messages (both ways)"}
WEBSOCKET_ERRORS = {
    "ClientError": "client errors (4xx before the integration)",
    "ExecutionError": "execution errors",
}


class LiveNotifierMonitoring(Concern):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        thresholds: Thresholds,
        notifier: lambda_.IFunction,
        dead_letters: sqs.IQueue,
        stage: apigwv2.IWebSocketStage | None = None,
    ) -> None:
        """`stage`: the WebSocket API's stage the notifier pushes through, graphed when given."""
        super().__init__(scope, construct_id, prefix=prefix, thresholds=thresholds)
        self._notifier = notifier
        self._dead_letters = dead_letters
        self._stage = stage
        alarm_on_stream_reader(
            self,
            notifier,
            dead_letters,
            iterator_age_id="NotifierIteratorAge",
            dead_letters_id="NotifierDeadLetters",
            behind="live updates are more than {minutes} minutes behind the order view's or inventory's "
            "stream: clients hear late (see the live notifier's log)",
            gave_up="the live notifier gave up on read-model stream records (an hour old): those changes "
            "were never pushed; clients recover with GET. The queue holds the shard and sequence range",
        )

    def widgets(self) -> list[cw.IWidget]:
        widgets: list[cw.IWidget] = [
            cw.GraphWidget(
                title="Live notifier iterator age (ms)",
                left=[iterator_age(self._notifier, label="iterator age (max)")],
            ),
            cw.GraphWidget(
                title="Live notifier invocations, errors, on-failure queue",
                left=[self._notifier.metric_invocations(period=ONE_MINUTE, label="invocations")],
                right=[
                    self._notifier.metric_errors(period=ONE_MINUTE, label="errors"),
                    self._dead_letters.metric_approximate_number_of_messages_visible(
                        period=ONE_MINUTE, label="on-failure queue"
                    ),
                ],
            ),
            cw.GraphWidget(
                title="Live notifier: what it told, and what it could not",
                left=[
                    service_metric(live.SERVICE, name, statistic="Sum", label=label)
                    for name, label in TOLD.items()
                ],
                right=[
                    service_metric(live.SERVICE, name, statistic="Sum", label=label)
                    for name, label in NOT_TOLD.items()
                ],
            ),
        ]
        stage = self._stage
        if stage is not None:
            widgets.append(
                cw.GraphWidget(
                    title="Live updates WebSocket API: connects, messages, errors",
                    left=[
                        stage.metric(name, statistic="Sum", period=ONE_MINUTE, label=label)
                        for name, label in WEBSOCKET_TRAFFIC.items()
                    ],
                    right=[
                        stage.metric(name, statistic="Sum", period=ONE_MINUTE, label=label)
                        for name, label in WEBSOCKET_ERRORS.items()
                    ],
                )
            )
        return widgets
