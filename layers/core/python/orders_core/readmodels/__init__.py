"""Read-model storage: the port every projection writes through, and its adapters."""
