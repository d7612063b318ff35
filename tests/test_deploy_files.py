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
    hardening = ("ProtectHome", "PrivateTmp", "ProtectKernelModules", "ProtectKernelLogs", "ProtectHostname")
    for key in (*hardening, "RestrictSUIDSGID", "RestrictNamespaces", "RestrictRealtime"):
        assert service[key] == "yes", key
    assert service["CapabilityBoundingSet"] == ""
    assert service["SystemCallArchitectures"] == "native"


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


def _checkable_copies(folder: Path) -> list[str]:
    """systemd-analyze wants ExecStart's program to exist (without PID-1 systemd too): copies of
    the units pointing at a stand-in program in a temporary prefix."""
    program = folder / "opt" / ".venv" / "bin" / "furrsight"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    copies = []
    for unit in UNITS:
        copy = folder / unit.name
        copy.write_text(unit.read_text().replace("/opt/furrsight", str(folder / "opt")))
        copies.append(str(copy))
    return copies


needs_systemd_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")


@needs_systemd_analyze
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """Unknown keys only warn (exit status 0), so any output counts as a failure."""
    result = subprocess.run(["systemd-analyze", "verify", *_checkable_copies(tmp_path)], capture_output=True, text=True)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@needs_systemd_analyze
def test_units_stay_hardened_by_systemd_analyze_security(tmp_path: Path) -> None:
    """systemd's own exposure score (0 = locked down, 10 = none): 3.2 for the web and default
    worker, 3.6 for the GPU worker (its devices, no ProtectClock); 5.8-6.4 before the last round
    of hardening. A unit that loses its hardening goes above 4."""
    for copy in _checkable_copies(tmp_path):
        result = subprocess.run(
            ["systemd-analyze", "security", "--offline=yes", "--no-pager", copy], capture_output=True, text=True
        )
        if "--offline" in result.stderr:  # systemd older than 250
            pytest.skip("this systemd-analyze cannot score unit files offline")
        score = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
        assert score is not None, result.stdout + result.stderr
        assert float(score.group(1)) <= 4.0, (copy, result.stdout)


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
