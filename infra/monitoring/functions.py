"""Every function: alarms on its unhandled errors and its throttles, and graphs of errors,
throttles and duration side by side."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.monitoring.common import FIVE_MINUTES, ONE_MINUTE, Concern, Thresholds, pascal_case


class FunctionsMonitoring(Concern):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        thresholds: Thresholds,
        functions: Mapping[str, lambda_.IFunction],
        error_thresholds: Mapping[str, int],
    ) -> None:
        """`functions` by the name their alarms and graphs show; `error_thresholds` for the ones
        that raise errors in a healthy run (the others alarm on the first)."""
        super().__init__(scope, construct_id, prefix=prefix, thresholds=thresholds)
        self._functions = dict(functions)
        usual = thresholds.function_errors
        for name, function in functions.items():
            threshold = error_thresholds.get(name, usual)
            self.add_alarm(
                f"{pascal_case(name)}Errors",
                function.metric_errors(statistic="Sum", period=FIVE_MINUTES),
                threshold=threshold,
                problem=f"function {name} raised unhandled errors"
                + (f" ({threshold} or more in 5 minutes)" if threshold != usual else ""),
            )
            self.add_alarm(
                f"{pascal_case(name)}Throttles",
                function.metric_throttles(statistic="Sum", period=FIVE_MINUTES),
                threshold=thresholds.function_throttles,
                problem=f"function {name} was throttled",
            )

    def widgets(self) -> list[cw.IWidget]:
        functions = self._functions
        return [
            cw.GraphWidget(
                title="Function errors",
                left=[f.metric_errors(period=ONE_MINUTE, label=n) for n, f in functions.items()],
            ),
            cw.GraphWidget(
                title="Function throttles",
                left=[f.metric_throttles(period=ONE_MINUTE, label=n) for n, f in functions.items()],
            ),
            cw.GraphWidget(
                title="Function duration (p99)",
                left=[
                    f.metric_duration(statistic="p99", period=ONE_MINUTE, label=n)
                    for n, f in functions.items()
                ],
            ),
        ]
