"""The run lock: no two nightly runs on one store at once, and the refusal names the holder."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from controller.run_lock import LockHeld, RunLock, default_lock_path


def test_lock_refuses_a_second_holder_and_names_the_first(tmp_path: Path) -> None:
    path = tmp_path / "health.lock"
    with RunLock(path, job="health run"):
        with pytest.raises(LockHeld) as caught:
            RunLock(path, job="health run").acquire()
        assert f"pid {os.getpid()}" in str(caught.value)
        assert str(path) in str(caught.value)
    with RunLock(path):  # released on exit
        pass


def test_lock_held_by_another_open_file_description(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(LockHeld, match="another nightly job holds"):
            RunLock(path, job="nightly job").acquire()


def test_default_lock_path_is_per_store() -> None:
    one = default_lock_path("health", "sqlite:///a.db")
    assert one != default_lock_path("health", "sqlite:///b.db")
    assert one.name.startswith("health-")
    assert one.suffix == ".lock"
