"""Execution state: the order journal (SQLite), the fill tracker and reconciliation with the exchange."""
