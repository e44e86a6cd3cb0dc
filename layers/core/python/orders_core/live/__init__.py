"""Live updates (ADR 14): who is connected, what they are told, and when.

The read models' own tables stream their changes to one notifier; it tells an order's owner when
the order view reflects a new version, and the operators when a product runs low. Pushes go
through a `Pusher` (API Gateway's @connections API on AWS, the local WebSocket server locally);
connections and raised alerts live in one table (`tables.LIVE_CONNECTIONS`).
"""
