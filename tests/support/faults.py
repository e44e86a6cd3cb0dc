"""A read store that fails at random, before or after it really writes (as a timeout would)."""

from __future__ import annotations

import random
from typing import Any

from orders_core.readmodels.port import ReadStore, ReadStoreError


class InjectedFault(ReadStoreError):
    """A store failure (a throttle, a timeout): the batch is delivered again, nothing is parked."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "InjectedFault")


class FlakyReadStore:
    WRITES = (
        "put_next_version",
        "put_if_newer",
        "add_contribution",
        "apply_atomically",
        "delete_if",
        "delete_partition_prefix_page",
    )
    READS = ("get_many", "query_partition", "query_index")

    def __init__(self, inner: ReadStore, rng: random.Random, probability: float = 0.1) -> None:
        self._inner = inner
        self._rng = rng
        self.probability = probability
        self.injected = 0

    def _roll(self) -> bool:
        if self.probability and self._rng.random() < self.probability:
            self.injected += 1
            return True
        return False

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if name not in self.WRITES + self.READS:
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._roll():
                raise InjectedFault(f"{name} failed before running")
            result = target(*args, **kwargs)
            if name in self.WRITES and self._roll():
                raise InjectedFault(f"{name} ran, then the reply was lost")
            return result

        return call
