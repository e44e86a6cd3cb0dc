"""The HTTP API: an alarm on its 5xx answers, and graphs of its requests, errors and latency."""

from __future__ import annotations

from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cw
from constructs import Construct

from infra.monitoring.common import FIVE_MINUTES, ONE_MINUTE, Concern, Thresholds


class ApiMonitoring(Concern):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        thresholds: Thresholds,
        api: apigwv2.HttpApi,
    ) -> None:
        super().__init__(scope, construct_id, prefix=prefix, thresholds=thresholds)
        self._api = api
        self.add_alarm(
            "Api5xx",
            api.metric_server_error(statistic="Sum", period=FIVE_MINUTES),
            threshold=thresholds.api_5xx,
            problem="the HTTP API answered 5xx",
        )

    def widgets(self) -> list[cw.IWidget]:
        api = self._api
        return [
            cw.GraphWidget(
                title="API requests and errors",
                left=[api.metric_count(period=ONE_MINUTE)],
                right=[
                    api.metric_client_error(period=ONE_MINUTE),
                    api.metric_server_error(period=ONE_MINUTE),
                ],
            ),
            cw.GraphWidget(
                title="API latency (p50, p99)",
                left=[
                    api.metric_latency(statistic="p50", period=ONE_MINUTE),
                    api.metric_latency(statistic="p99", period=ONE_MINUTE),
                ],
            ),
        ]
