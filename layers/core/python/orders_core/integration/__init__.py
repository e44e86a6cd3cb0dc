"""Integration events: every order and product event, published on the stack's event bus.

events       what one stored event becomes on the bus (Source, DetailType, the Detail), and the
             PutEvents limits an entry and a request must honour
port         the event bus as the publisher sees it (EventBus), and its errors
memory       an in-memory bus for tests, holding the same limits as EventBridge
eventbridge  the EventBridge adapter (PutEvents)
publisher    a batch of the events stream's records -> entries on the bus, at least once
schemas      one JSON Schema per event type and version (docs/events/), from the event catalog
"""
