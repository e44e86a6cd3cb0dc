"""The order domain: pure decide/evolve functions, no I/O, no clock, no environment."""
