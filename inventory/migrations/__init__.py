"""Alembic migrations of the polyfleet store (valid on SQLite and PostgreSQL)."""
