"""Alembic migrations of the polyfleet store (valid on SQLite and PostgreSQL)."""

HEAD = "0013"
"""The newest revision. Opening a store already at HEAD skips loading Alembic (~80 ms of
imports per command); a test checks this constant against the migration scripts."""
