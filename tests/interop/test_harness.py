"""The interop harness itself: in CI a missing peer binary fails, elsewhere it skips."""

from __future__ import annotations

import pytest

from tests.interop.conftest import require_binary


def test_missing_binary_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="must run in CI"):
        require_binary("polyfleet-no-such-peer")


def test_missing_binary_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require_binary("polyfleet-no-such-peer")


def test_present_binary_is_found() -> None:
    assert require_binary("sh").endswith("sh")
