"""Settings (pydantic-settings): the environment over the config file over defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.settings import ConfigError, load_settings


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "polyfleet.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file_or_environment() -> None:
    settings = load_settings(None)
    assert settings.db is None
    assert settings.portal.url is None
    assert settings.portal.token is None
    assert settings.drivers == {}


def test_the_environment_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, 'db = "from-file.db"\nimport_max_bytes = 10\npolicy = "p.toml"\n')
    monkeypatch.setenv("POLYFLEET_DB", "from-env.db")
    monkeypatch.setenv("polyfleet_import_max_bytes", "20")  # names in any case
    settings = load_settings(config)
    assert settings.db == "from-env.db"
    assert settings.import_max_bytes == 20
    assert settings.policy == Path("p.toml")


def test_config_file_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYFLEET_CONFIG", str(_config(tmp_path, 'db = "x.db"\n')))
    assert load_settings(None).db == "x.db"


def test_a_section_key_by_key_or_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYFLEET_PORTAL", '{"url": "https://portal.example", "token": "a"}')
    monkeypatch.setenv("POLYFLEET_PORTAL__TOKEN", "s3cret")
    monkeypatch.setenv("POLYFLEET_DRIVERS__POLY_UC__FIRMWARE", "6.4.3")
    settings = load_settings(None)
    assert settings.portal.url == "https://portal.example"
    assert settings.portal.token is not None
    assert settings.portal.token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.drivers == {"poly_uc": {"firmware": "6.4.3"}}


def test_other_variables_are_not_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYFLEET_LOG_DIR", "/tmp/logs")
    monkeypatch.setenv("POLYFLEET_DB__X", "1")
    monkeypatch.setenv("TOKEN", "not-the-portal-token")
    monkeypatch.setenv("URL", "https://not-the-portal")
    settings = load_settings(None)
    assert settings.db is None
    assert settings.portal.token is None
    assert settings.portal.url is None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("POLYFLEET_PORTAL", "{not json", 'field "portal"'),
        ("POLYFLEET_DRIVERS", "[1]", "drivers"),
        ("POLYFLEET_IMPORT_MAX_BYTES", "0", "import_max_bytes"),
        ("POLYFLEET_OBSERVATION_HISTORY", "0", "observation_history"),
        ("POLYFLEET_PORTAL__COLOR", "red", "color"),
    ],
)
def test_a_bad_environment_value_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_settings(None)


def test_an_unknown_file_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="colour"):
        load_settings(_config(tmp_path, 'colour = "red"\n'))
