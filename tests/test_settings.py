from pathlib import Path

import pytest

from furrsight.settings import SettingsError, iter_settings_docs, load_settings


def test_every_setting_has_a_line_of_documentation() -> None:
    undocumented = [name for name, _env, doc in iter_settings_docs() if not doc.strip()]
    assert undocumented == []


def test_environment_overrides_toml_which_overrides_defaults(tmp_path: Path) -> None:
    config = tmp_path / "furrsight.toml"
    config.write_text('port = 9001\nhost = "0.0.0.0"\n[ingest]\nthumb_size = 200\n')
    settings = load_settings(
        {"FURRSIGHT_CONFIG": str(config), "FURRSIGHT_PORT": "9002", "FURRSIGHT_IMPORT_ROOTS": "/a, /b"}
    )
    assert settings.port == 9002
    assert settings.host == "0.0.0.0"
    assert settings.ingest.thumb_size == 200
    assert settings.import_roots == ["/a", "/b"]


def test_nested_settings_from_environment() -> None:
    settings = load_settings({"FURRSIGHT_SCRAPING_ALLOWED_NETWORKS": "10.0.0.0/8,127.0.0.0/8"})
    assert settings.scraping.allowed_networks == ["10.0.0.0/8", "127.0.0.0/8"]


def test_data_dir_alias() -> None:
    assert load_settings({"FURRSIGHT_DATA": "/srv/fs"}).data_dir == "/srv/fs"


@pytest.mark.parametrize(
    "env",
    [{"FURRSIGHT_PORT": "eighty"}, {"FURRSIGHT_PORT": "70000"}, {"FURRSIGHT_CONFIG": "/nonexistent.toml"}],
)
def test_bad_settings_name_the_problem(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        load_settings(env)


def test_unknown_key_in_config_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("prot = 80\n")
    with pytest.raises(SettingsError, match="prot"):
        load_settings({"FURRSIGHT_CONFIG": str(config)})
