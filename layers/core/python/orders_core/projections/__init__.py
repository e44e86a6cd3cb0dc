"""Projections: pure folds of events into read rows, and the adapters that store them exactly once."""
