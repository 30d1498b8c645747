"""load_settings: settings read from an environment mapping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scheduler.config import ConfigError, Settings, default_home, load_settings


def test_defaults_under_sched_home(tmp_path: Path) -> None:
    settings = load_settings({"SCHED_HOME": str(tmp_path)})
    assert settings.home == tmp_path
    assert settings.db_url == f"sqlite:///{tmp_path / 'sched.db'}"
    assert settings.checkpoint_root == tmp_path / "checkpoints"
    assert settings.ray_address is None
    assert settings.ray_gcs_port == 6379
    assert settings.ray_dashboard_port == 8265
    assert settings.ray_temp_dir is None
    assert settings.ray_num_cpus is None
    assert settings.local_price_per_hour == 0.0
    assert settings.poll_interval_s == 1.0


def test_sched_home_expands_tilde(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load_settings({"SCHED_HOME": "~/sched-data"})
    assert settings.home == tmp_path / "sched-data"
    assert settings.db_url == f"sqlite:///{tmp_path / 'sched-data' / 'sched.db'}"


def test_sched_home_wins_over_xdg(tmp_path: Path) -> None:
    settings = load_settings({"SCHED_HOME": str(tmp_path / "a"), "XDG_DATA_HOME": "/xdg"})
    assert settings.home == tmp_path / "a"


def test_xdg_data_home_fallback(tmp_path: Path) -> None:
    settings = load_settings({"XDG_DATA_HOME": str(tmp_path)})
    assert settings.home == tmp_path / "sched"
    assert settings.db_url == f"sqlite:///{tmp_path / 'sched' / 'sched.db'}"


@pytest.mark.parametrize("environ", [{}, {"SCHED_HOME": "", "XDG_DATA_HOME": ""}])
def test_home_fallback_is_local_share(
    environ: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_home(environ) == tmp_path / ".local" / "share" / "sched"
    assert load_settings(environ).home == tmp_path / ".local" / "share" / "sched"


def test_overrides(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "SCHED_HOME": str(tmp_path),
            "SCHED_DB_URL": "postgresql://u@db/sched",
            "SCHED_RAY_PORT": "7000",
            "SCHED_RAY_DASHBOARD_PORT": "9265",
            "SCHED_RAY_ADDRESS": "http://127.0.0.1:8265",
            "SCHED_RAY_TEMP_DIR": "/tmp/ray-x",
            "SCHED_RAY_NUM_CPUS": "4",
            "SCHED_LOCAL_PRICE_PER_HOUR": "0.25",
            "SCHED_POLL_INTERVAL": "0.5",
        }
    )
    assert settings.db_url == "postgresql://u@db/sched"
    assert settings.ray_gcs_port == 7000
    assert settings.ray_dashboard_port == 9265
    assert settings.ray_address == "http://127.0.0.1:8265"
    assert settings.ray_temp_dir == "/tmp/ray-x"
    assert settings.ray_num_cpus == 4
    assert settings.local_price_per_hour == 0.25
    assert settings.poll_interval_s == 0.5
    # The database URL override does not move the data directory.
    assert settings.home == tmp_path


def test_empty_override_keeps_default(tmp_path: Path) -> None:
    settings = load_settings(
        {"SCHED_HOME": str(tmp_path), "SCHED_RAY_PORT": "", "SCHED_DB_URL": ""}
    )
    assert settings.ray_gcs_port == 6379
    assert settings.db_url.startswith("sqlite:///")


def test_unrelated_variables_ignored(tmp_path: Path) -> None:
    environ = {"SCHED_HOME": str(tmp_path), "SCHED_RAY_PROT": "abc", "PATH": "/bin"}
    assert load_settings(environ) == load_settings({"SCHED_HOME": str(tmp_path)})


def test_bad_ray_port_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"SCHED_HOME": str(tmp_path), "SCHED_RAY_PORT": "abc"})
    message = str(info.value)
    assert message.startswith("SCHED_RAY_PORT: ")
    assert "integer" in message


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("SCHED_RAY_DASHBOARD_PORT", "x"),
        ("SCHED_RAY_NUM_CPUS", "0"),
        ("SCHED_LOCAL_PRICE_PER_HOUR", "-1"),
        ("SCHED_LOCAL_PRICE_PER_HOUR", "cheap"),
        ("SCHED_POLL_INTERVAL", "0"),
    ],
)
def test_bad_values_name_their_variable(var: str, value: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"^{var}: "):
        load_settings({"SCHED_HOME": str(tmp_path), var: value})


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_reads_os_environ_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("SCHED_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("SCHED_HOME", str(tmp_path))
    monkeypatch.setenv("SCHED_RAY_PORT", "6390")
    settings = load_settings()
    assert isinstance(settings, Settings)
    assert settings.home == tmp_path
    assert settings.ray_gcs_port == 6390


def test_port_out_of_range_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^SCHED_RAY_DASHBOARD_PORT: "):
        load_settings({"SCHED_HOME": "/tmp/x", "SCHED_RAY_DASHBOARD_PORT": "70000"})
