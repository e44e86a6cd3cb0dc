"""Opening and closing live connections ($connect, $disconnect)."""

from __future__ import annotations

from orders_core.live.identity import Identity
from orders_core.live.port import CONNECTION_LIFETIME_SECONDS, Connection, ConnectionStore


class LiveSessions:
    def __init__(
        self, connections: ConnectionStore, *, lifetime_seconds: int = CONNECTION_LIFETIME_SECONDS
    ) -> None:
        self._connections = connections
        self._lifetime = lifetime_seconds

    def open(self, connection_id: str, identity: Identity, *, connected_at: float) -> Connection:
        """Remember a connection the authorizer let in; it expires when API Gateway would close it."""
        connection = Connection(
            connection_id, identity.subject, identity.groups, int(connected_at) + self._lifetime
        )
        self._connections.add(connection)
        return connection

    def close(self, connection_id: str) -> None:
        self._connections.remove(connection_id)
