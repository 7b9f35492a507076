"""The parity toolkit: compare another implementation with the oracle, explain each
disagreement, golden cases, the pytest plugin and the command line."""
