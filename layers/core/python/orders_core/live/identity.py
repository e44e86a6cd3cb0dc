"""Who holds a live connection: the subject of the token that opened it, and its groups.

API Gateway hands an authorizer's `context` to every later route of the connection, and allows
only strings, numbers and booleans in it: the groups travel as one comma-separated string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SUBJECT_KEY = "sub"
GROUPS_KEY = "groups"
# Cognito access tokens name the user's groups in this claim.
GROUPS_CLAIM = "cognito:groups"


class NoIdentity(ValueError):
    """The claims or the authorizer context name no subject."""


@dataclass(frozen=True)
class Identity:
    subject: str
    groups: frozenset[str] = frozenset()

    def authorizer_context(self) -> dict[str, str]:
        """What the $connect authorizer returns as `context` (strings only)."""
        return {SUBJECT_KEY: self.subject, GROUPS_KEY: ",".join(sorted(self.groups))}


def identity_from_claims(claims: Mapping[str, Any]) -> Identity:
    """The identity a verified token's claims describe."""
    subject = claims.get(SUBJECT_KEY)
    if not isinstance(subject, str) or not subject:
        raise NoIdentity("the token names no subject")
    groups = claims.get(GROUPS_CLAIM) or []
    if isinstance(groups, str):
        groups = [groups]
    return Identity(subject, frozenset(str(group) for group in groups if group))


def identity_from_authorizer_context(context: Mapping[str, Any] | None) -> Identity:
    """The identity a later route of the connection receives from API Gateway."""
    context = context or {}
    subject = context.get(SUBJECT_KEY)
    if not isinstance(subject, str) or not subject:
        raise NoIdentity("the connection's authorizer context names no subject")
    groups = str(context.get(GROUPS_KEY) or "")
    return Identity(subject, frozenset(group for group in groups.split(",") if group))
