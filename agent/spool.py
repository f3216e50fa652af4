"""Results waiting for the controller, in a local SQLite file that survives a restart.

Every result goes through the spool: it is written here first, then delivered oldest first and
deleted once the controller has answered for it. A result the controller stored but whose answer
was lost is sent again, and the controller (idempotent by job id) stores it once: each result is
delivered exactly once as far as the store is concerned.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    spooled_at TEXT NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class Spooled:
    job_id: str
    body: dict[str, Any]


class ResultSpool:
    """put / pending (oldest first) / delivered; one writer (the agent process)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a spooled result survives a power cut
        self._db.execute(_SCHEMA)

    def put(self, job_id: str, body: dict[str, Any]) -> bool:
        """Keep a result until delivered; False if that job's result is already spooled."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO results (job_id, body, spooled_at) VALUES (?, ?, ?)",
            (job_id, json.dumps(body), datetime.now(UTC).isoformat()),
        )
        return cursor.rowcount == 1

    def pending(self) -> list[Spooled]:
        rows = self._db.execute("SELECT job_id, body FROM results ORDER BY seq").fetchall()
        return [Spooled(job_id, json.loads(body)) for job_id, body in rows]

    def delivered(self, job_id: str) -> None:
        self._db.execute("DELETE FROM results WHERE job_id = ?", (job_id,))

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM results").fetchone()[0])

    def close(self) -> None:
        self._db.close()
