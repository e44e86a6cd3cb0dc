"""The read side's use cases: what the query API answers, from the read models and the event log.

read_models  each read model at the generation readers use now (switches after a rebuild)
orders       one order (waiting for min_version), its history, its past, a customer's orders
reports      the cross-stream read models: a day's sales, a product's stock, a customer's summary
temporal     an order at a version or an instant, folded from the event store
"""
