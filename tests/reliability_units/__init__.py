"""Reliability units: a table-driven bad-input corpus and fault injection (stores, backends)."""
