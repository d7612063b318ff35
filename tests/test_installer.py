"""The installer run for real, as root, into a throwaway prefix, data and config folder with a
test-only service user: install from the checkout, upgrade piped from a git URL, uninstall, purge.

Where systemd is not PID 1 (this machine, most CI containers) the services run under the
furrsight-service fallback; the test forces that path (FURRSIGHT_SYSTEMD=no) everywhere, since
systemd would not read units from a temporary folder. The GPU branch is checked with a fake
nvidia-smi and --dry-run: no multi-GB download in a test.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import pwd
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from furrsight.auth.state import CSRF_COOKIE
from furrsight.supervisor import free_port

ROOT = Path(__file__).resolve().parent.parent
INSTALLER = ROOT / "installer" / "install.sh"
UNITS = ("furrsight-web", "furrsight-worker", "furrsight-gpu-worker")
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the installer runs as root (CI runs the tests as root)")


@dataclass
class Place:
    base: Path
    user: str
    port: int

    @property
    def prefix(self) -> Path:
        return self.base / "opt"

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def etc(self) -> Path:
        return self.base / "etc"

    @property
    def units(self) -> Path:
        return self.base / "units"

    @property
    def script(self) -> Path:
        return self.prefix / "bin" / "furrsight-service"

    def env(self, **extra: str) -> dict[str, str]:
        """The caller's environment without any FURRSIGHT_* or Python path of the test session."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FURRSIGHT_")}
        for name in ("PYTHONPATH", "VIRTUAL_ENV", "PROMETHEUS_MULTIPROC_DIR"):
            env.pop(name, None)
        env.update(
            FURRSIGHT_PREFIX=str(self.prefix),
            FURRSIGHT_DATA=str(self.data),
            FURRSIGHT_ETC=str(self.etc),
            FURRSIGHT_UNIT_DIR=str(self.units),
            FURRSIGHT_USER=self.user,
            FURRSIGHT_PORT=str(self.port),
            FURRSIGHT_SYSTEMD="no",
            # Byte-compiling every installed module takes pip about 30 of its 50 s here; the
            # services then compile what they import as they start (docs/install.md).
            PIP_NO_COMPILE="1",
        )
        env.update(extra)
        return env

    def install(self, *args: str, stdin: bytes | None = None, **extra: str) -> str:
        """Run the installer (the script's path, or piped on standard input); its output, or fail with it."""
        argv = ["bash", "-s", "--", *args] if stdin is not None else ["bash", str(INSTALLER), *args]
        started = time.monotonic()
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=self.env(**extra), start_new_session=True,
        )  # fmt: skip
        try:
            out, _ = proc.communicate(stdin, timeout=600)
        except subprocess.TimeoutExpired:  # the installer and whatever it runs (pip, git): its own group
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        print(f"install.sh {' '.join(args)}: {time.monotonic() - started:.1f} s")
        output = out.decode(errors="replace")
        assert proc.returncode == 0, output
        return output

    def service_pid(self) -> int | None:
        pidfile = self.data / "run" / "furrsight-service.pid"
        return int(pidfile.read_text()) if pidfile.exists() else None


def _processes_of(user: str) -> list[int]:
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
            except FileNotFoundError:
                pass
    return found


def _scratch() -> str:
    """tmpfs where it has room: here, removing the 1.4 GB virtualenv from the disk (ext4 mounted
    with `discard`) took 20 s, from /dev/shm well under one. A container's small /dev/shm: /tmp."""
    try:
        shm = os.statvfs("/dev/shm")
    except OSError:
        return "/tmp"
    roomy = shm.f_bavail * shm.f_frsize > 4 * 2**30
    return "/dev/shm" if roomy and not shm.f_flag & os.ST_NOEXEC else "/tmp"


@pytest.fixture
def place() -> Iterator[Place]:
    """A throwaway install's folders (traversable by the service user: not under pytest's 0700
    tmp folders) and user; on the way out, whatever the test left is stopped and removed."""
    base = Path(tempfile.mkdtemp(prefix="furrsight-install-", dir=_scratch()))
    base.chmod(0o755)
    spot = Place(base, f"fs-test-{os.getpid()}", free_port())
    try:
        yield spot
    finally:
        if spot.script.exists():
            subprocess.run([str(spot.script), "stop"], capture_output=True, timeout=120)
        for pid in _processes_of(spot.user):  # only the test-only user's: processes this test started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if _processes_of(spot.user) == [] and spot.user in {p.pw_name for p in pwd.getpwall()}:
            subprocess.run(["userdel", spot.user], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _health(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _first_admin_through_setup(port: int, code: str) -> tuple[int, str]:
    """What a browser does on /setup with the code the installer printed: the answer's status and
    where it sends the new admin."""
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    browser.open(f"http://127.0.0.1:{port}/setup", timeout=10).read()
    token = next(cookie.value for cookie in jar if cookie.name == CSRF_COOKIE)
    form = {"code": code, "username": "ada", "password": "a long password", "password2": "a long password"}
    body = urllib.parse.urlencode({**form, "_csrf_token": token}).encode()
    try:
        browser.open(f"http://127.0.0.1:{port}/setup", data=body, timeout=30)
    except urllib.error.HTTPError as answer:  # the redirect, not followed
        return answer.code, answer.headers["location"]
    raise AssertionError("/setup did not redirect")


def _git_snapshot(folder: Path) -> str:
    """A git repository holding this checkout's files as they are now, plus a marker file: the
    URL an upgrade is piped from (a fresh clone in CI is the same)."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "-co", "--exclude-standard"], capture_output=True
    )
    assert listed.returncode == 0, listed.stderr
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    (folder / "UPGRADE-MARKER").write_text("the upgrade's code\n")
    git = ["git", "-C", str(folder), "-c", "user.name=test", "-c", "user.email=test@example.org"]
    for step in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "the upgrade"]):
        assert subprocess.run([*git, *step], capture_output=True).returncode == 0
    return f"file://{folder}"


@as_root
def test_install_upgrade_uninstall_purge_for_real(place: Place) -> None:
    # 1. A fresh install from the checkout: services up, /health 200, the setup code printed.
    output = place.install()
    assert "runs under 'furrsight up'" in output
    code = re.search(r"enter the setup code: (\w{4}-\w{4}-\w{4})", output)
    assert code is not None, output
    assert code.group(1) == (place.data / "setup-code").read_text().strip()
    status, report = _health(place.port)
    assert status == 200, report
    assert f"FURRSIGHT_PORT={place.port}" in (place.etc / "furrsight.env").read_text().splitlines()
    assert place.data.stat().st_uid == pwd.getpwnam(place.user).pw_uid
    first_pid = place.service_pid()
    assert first_pid is not None and first_pid in _processes_of(place.user)
    for unit in UNITS:  # installed with this install's folders and user
        text = (place.units / f"{unit}.service").read_text()
        assert f"User={place.user}" in text and f"ReadWritePaths={place.data}" in text
        assert f"ExecStart={place.prefix}/.venv/bin/furrsight " in text
    if shutil.which("systemd-analyze"):
        paths = [str(place.units / f"{unit}.service") for unit in UNITS]
        verify = subprocess.run(["systemd-analyze", "verify", *paths], capture_output=True, text=True)
        assert (verify.returncode, verify.stdout + verify.stderr) == (0, "")

    # 2. Between the runs: the first admin made with the printed code (a row), a file in the data
    # folder, an edited env file.
    assert _first_admin_through_setup(place.port, code.group(1)) == (303, "/")
    (place.data / "keep.txt").write_text("mine\n")
    env_file = place.etc / "furrsight.env"
    env_file.write_text(env_file.read_text() + "# edited by the admin\n")
    env_before = env_file.read_bytes()
    (place.prefix / "stale.py").write_text("# a file the new code no longer has\n")

    # 3. Upgrade in place, piped like `curl … | bash` from a git URL: new code, data kept.
    snapshot = place.base / "repo"
    snapshot.mkdir()
    output = place.install(stdin=INSTALLER.read_bytes(), FURRSIGHT_REPO=_git_snapshot(snapshot))
    assert "upgrading the installation" in output
    assert "An account exists already: sign in." in output
    assert (place.prefix / "UPGRADE-MARKER").exists() and not (place.prefix / "stale.py").exists()
    assert (place.data / "keep.txt").read_text() == "mine\n"
    assert env_file.read_bytes() == env_before
    with contextlib.closing(sqlite3.connect(place.data / "furrsight.db")) as db:
        assert db.execute("select username, role from users").fetchall() == [("ada", "admin")]
    assert _health(place.port)[0] == 200
    second_pid = place.service_pid()
    assert second_pid is not None and second_pid != first_pid and first_pid not in _processes_of(place.user)

    # 4. Uninstall: code, units and furrsight-service gone, every process stopped; data and config kept.
    output = place.install("--uninstall")
    assert "kept the data" in output
    assert not place.prefix.exists() and list(place.units.glob("*.service")) == []
    assert _processes_of(place.user) == []
    assert (place.data / "keep.txt").exists() and env_file.read_bytes() == env_before
    assert (place.data / "furrsight.db").exists()

    # 5. Purge: the data, the configuration and the user go too.
    place.install("--purge")
    assert not place.data.exists() and not place.etc.exists()
    assert place.user not in {p.pw_name for p in pwd.getpwall()}


def _fake_tools(folder: Path, gpu: bool, nvcc: bool) -> dict[str, str]:
    """A PATH with a fake nvidia-smi (listing one GPU, or failing like it does without a driver) and
    optionally a fake nvcc, and CUDA_HOME pointing at nothing: what the GPU branch decides on."""
    folder.mkdir()
    smi = "echo 'GPU 0: NVIDIA RTX A4000 (UUID: GPU-00000000-fake)'" if gpu else "echo 'No devices were found'; exit 6"
    (folder / "nvidia-smi").write_text(f"#!/bin/sh\n{smi}\n")
    if nvcc:
        (folder / "nvcc").write_text("#!/bin/sh\necho 'Cuda compilation tools, release 13.0'\n")
    for tool in folder.iterdir():
        tool.chmod(0o755)
    return {"PATH": f"{folder}:/usr/sbin:/usr/bin:/sbin:/bin", "CUDA_HOME": str(folder / "no-cuda")}


@pytest.mark.parametrize(
    ("gpu", "nvcc", "expected", "absent"),
    [
        (False, True, [], ["onnxruntime-gpu[cuda,cudnn]", "GGML_CUDA", "GPU:"]),
        (True, False, ["onnxruntime-gpu[cuda,cudnn]", "no CUDA toolkit (nvcc): GGUF models"], ["GGML_CUDA"]),
        (True, True, ["onnxruntime-gpu[cuda,cudnn]", "CMAKE_ARGS=-DGGML_CUDA=on", "--no-cache-dir"], ["no CUDA"]),
    ],
    ids=["no-gpu", "gpu-without-nvcc", "gpu-with-nvcc"],
)
def test_gpu_branch_in_a_dry_run(tmp_path: Path, gpu: bool, nvcc: bool, expected: list[str], absent: list[str]) -> None:
    env = Place(tmp_path, "fs-test-nobody", 8000).env(**_fake_tools(tmp_path / "bin", gpu, nvcc))
    result = subprocess.run(["bash", str(INSTALLER), "--dry-run"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    pip_lines = [line for line in result.stdout.splitlines() if " install -q " in line or "GPU" in line]
    for text in expected:
        assert text in result.stdout, pip_lines
    for text in absent:
        assert text not in result.stdout, pip_lines
    assert not (tmp_path / "opt").exists()  # a dry run changes nothing


def test_uninstall_refuses_a_system_folder_as_prefix(tmp_path: Path) -> None:
    env = Place(tmp_path, "fs-test-nobody", 8000).env(FURRSIGHT_PREFIX="/usr")
    result = subprocess.run(
        ["bash", str(INSTALLER), "--uninstall", "--dry-run"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "/usr: refusing a system folder" in result.stderr
