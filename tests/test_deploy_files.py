"""The files an admin installs: systemd units and the installer."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = sorted((ROOT / "systemd").glob("*.service"))
DOCS = "\n".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


def _values(path: Path, key: str) -> list[str]:
    """Every value of a key that may repeat (configparser keeps only the last)."""
    return re.findall(rf"^{key}=(.*)$", path.read_text(), flags=re.M)


def test_the_three_units() -> None:
    assert [u.name for u in UNITS] == [
        "furrsight-gpu-worker.service",
        "furrsight-web.service",
        "furrsight-worker.service",
    ]


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
    assert service["ReadWritePaths"] == "/var/lib/furrsight"
    for key in ("ProtectHome", "PrivateTmp", "ProtectKernelModules", "RestrictSUIDSGID", "RestrictNamespaces"):
        assert service[key] == "yes", key


def test_each_worker_unit_runs_one_queue_and_only_the_gpu_one_sees_devices() -> None:
    web, worker, gpu = (ROOT / "systemd" / f"furrsight-{n}.service" for n in ("web", "worker", "gpu-worker"))
    assert _unit(worker)["Service"]["ExecStart"].endswith(" worker --only default")
    assert _unit(gpu)["Service"]["ExecStart"].endswith(" worker --only gpu")
    for unit in (web, worker):
        assert _unit(unit)["Service"]["PrivateDevices"] == "yes"
        assert _values(unit, "DeviceAllow") == []
    service = _unit(gpu)["Service"]
    assert "PrivateDevices" not in service  # it would hide /dev/nvidia*
    assert service["DevicePolicy"] == "closed"
    # The NVIDIA device groups of /proc/devices and nothing else: major 195 under its old and its
    # current name (/dev/nvidia0..N, nvidiactl, nvidia-modeset), and nvidia-uvm (CUDA's memory).
    assert _values(gpu, "DeviceAllow") == ["char-nvidia-frontend rw", "char-nvidia rw", "char-nvidia-uvm rw"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """verify needs ExecStart's program to exist (without PID-1 systemd too): copies of the units
    pointing at a stand-in program in a temporary prefix. Unknown keys only warn, so any output
    counts as a failure."""
    program = tmp_path / "opt" / ".venv" / "bin" / "furrsight"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    copies = []
    for unit in UNITS:
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace("/opt/furrsight", str(tmp_path / "opt")))
        copies.append(str(copy))
    result = subprocess.run(["systemd-analyze", "verify", *copies], capture_output=True, text=True)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def _dry_run(tmp_path: Path, **env: str) -> str:
    environment = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "FURRSIGHT_PREFIX": str(tmp_path / "opt"),
        "FURRSIGHT_USER": "fs-test-absent",
        **env,
    }
    result = subprocess.run(
        ["bash", str(ROOT / "installer" / "install.sh"), "--dry-run"], env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_installer_dry_run_lists_every_step(tmp_path: Path) -> None:
    out = _dry_run(tmp_path, FURRSIGHT_SYSTEMD="yes")
    steps = ("useradd", "python3 -m venv", "pip install", "furrsight-service run migrate", "systemctl enable --now")
    for step in steps:
        assert step in out
    assert "furrsight-web furrsight-worker furrsight-gpu-worker" in out
    fallback = _dry_run(tmp_path, FURRSIGHT_SYSTEMD="no")
    assert "furrsight-service start" in fallback and "systemctl" not in fallback
    assert not (tmp_path / "opt").exists()


def test_every_variable_the_installer_reads_is_documented() -> None:
    scripts = (ROOT / "installer" / "install.sh").read_text() + (ROOT / "installer" / "furrsight-service").read_text()
    names = set(re.findall(r"\$\{?(FURRSIGHT_[A-Z_]+|CUDA_HOME|CMAKE_ARGS)", scripts))
    assert len(names) >= 10
    assert sorted(n for n in names if f"`{n}`" not in DOCS) == []
