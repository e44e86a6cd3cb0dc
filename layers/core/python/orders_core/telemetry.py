"""Metrics as CloudWatch embedded metric format (EMF), through Powertools, one set per invocation.

Powertools' `Metrics` keeps one metric set per process, shared by every instance; the local run
serves several functions from the threads of one process, so each invocation gets a provider
of its own here. Flushing prints one EMF line to stdout (CloudWatch Logs turns it into metrics)
only when something was counted, and never when POWERTOOLS_METRICS_DISABLED is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

DEFAULT_NAMESPACE = "Orders"
NAMESPACE_ENV = "POWERTOOLS_METRICS_NAMESPACE"


def metrics_namespace(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE


class InvocationMetrics:
    """Counts of one invocation, all under the same dimensions (the service and, say, the command)."""

    def __init__(self, service: str, dimensions: Mapping[str, str], namespace: str | None = None) -> None:
        self._provider = AmazonCloudWatchEMFProvider(
            namespace=namespace or metrics_namespace(),
            service=service,
            metric_set={},
            dimension_set={},
            metadata_set={},
            default_dimensions={"service": service, **dimensions},
        )

    def count(self, name: str, value: int = 1) -> None:
        self._provider.add_metric(name=name, unit=MetricUnit.Count, value=value)

    def milliseconds(self, name: str, value: float) -> None:
        self._provider.add_metric(name=name, unit=MetricUnit.Milliseconds, value=value)

    def metadata(self, key: str, value: Any) -> None:
        """High-cardinality context (a correlation id): searchable in the log line, not a dimension."""
        self._provider.add_metadata(key=key, value=value)

    def flush(self) -> None:
        # Powertools warns on an empty flush; an invocation that counted nothing has nothing to say.
        if self._provider.metric_set:
            self._provider.flush_metrics()


@contextmanager
def invocation_metrics(service: str, **dimensions: str) -> Iterator[InvocationMetrics]:
    """Metrics flushed when the block ends, also when it raises."""
    metrics = InvocationMetrics(service, dimensions)
    try:
        yield metrics
    finally:
        metrics.flush()
