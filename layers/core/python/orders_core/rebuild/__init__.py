"""Rebuilding a read model from the event log into a new generation, then switching readers."""
