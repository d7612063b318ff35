"""The files an admin installs: systemd units and the installer."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = sorted((ROOT / "systemd").glob("*.service"))


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_runs_a_real_command_hardened(unit: Path) -> None:
    service = _unit(unit)["Service"]
    argv = service["ExecStart"].split()
    assert argv[0] == "/opt/furrsight/.venv/bin/furrsight"
    help_run = subprocess.run([sys.executable, "-m", "furrsight", *argv[1:], "--help"], capture_output=True, cwd=ROOT)
    assert help_run.returncode == 0, help_run.stderr
    assert service["User"] == "furrsight"
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "yes"
    assert "/var/lib/furrsight" in service["ReadWritePaths"]


def test_installer_dry_run_lists_every_step() -> None:
    installer = ROOT / "installer" / "install.sh"
    result = subprocess.run(["bash", str(installer), "--dry-run"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for step in ("apt-get install", "useradd", "python3 -m venv", "pip install", "furrsight migrate", "enable --now"):
        assert step in result.stdout
