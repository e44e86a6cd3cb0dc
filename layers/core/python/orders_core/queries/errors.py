"""Answers of the read side that are neither a result nor a missing resource."""

from __future__ import annotations


class ViewNotCaughtUp(Exception):
    """The read model does not show the version the caller waits for, within the wait allowed."""

    def __init__(self, shown: int | None, wanted: int) -> None:
        at = f"version {shown}" if shown is not None else "no version yet"
        super().__init__(f"the order view shows {at}; version {wanted} is not visible yet, retry shortly")
        self.shown = shown
        self.wanted = wanted
