"""What rebuild operations refuse for, apart from the domain's errors; light to import, so that
every HTTP function can map it without importing the rebuild machinery."""

from __future__ import annotations


class RebuildsUnavailable(Exception):
    """No rebuild workflow is deployed where this runs."""
