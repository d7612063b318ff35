"""Issue 5, models: manifests, import/verify/remove, pull with resume and pinned hashes (from a
local HTTP server standing in for the internet), the runtime adapters and GPU residency."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from typer.testing import CliRunner

from furrsight.inference.gguf_runtime import GGUFChat, GGUFOutputError
from furrsight.inference.install import ModelStore, manifest_toml
from furrsight.inference.manifest import ModelError, catalogue, parse_manifest
from furrsight.inference.onnx_runtime import OnnxModel
from furrsight.inference.residency import Residency
from furrsight.settings import Settings
from tests.conftest import WorkerProcess, wait_for_job
from tests.tiny_models import make_tiny_clip, make_tiny_gguf, make_tiny_mmproj


class FileServer:
    """A loopback HTTP server for model files, honouring Range requests (the internet's stand-in)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.ranges: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                body = server.files.get(self.path.rsplit("/", 1)[-1])  # /<revision>/<file>
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                start = 0
                if rng := self.headers.get("Range"):
                    server.ranges.append(rng)
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def file_server() -> Iterator[FileServer]:
    server = FileServer({"weights.bin": bytes(range(256)) * 4000, "other.bin": b"x" * 5000})
    yield server
    server.httpd.shutdown()


REV = "0123456789abcdef0123456789abcdef01234567"  # a commit the test server pretends to serve


def write_manifest(
    folder: Path, name: str, url: str, sha: str | None = None, size: int | None = None, pinned: bool = True
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rev = REV if pinned else "main"
    lines = [f'name = "{name}"', 'task = "image-embed"', 'runtime = "onnx"', 'license = "CC0-1.0"',
             'source = "tests"', "[[files]]", 'path = "weights.bin"', f'url = "{url}/{rev}/weights.bin"']  # fmt: skip
    if pinned:
        lines.append(f'revision = "{REV}"')
    if sha:
        lines.append(f'sha256 = "{sha}"')
    if size:
        lines.append(f"size = {size}")
    (folder / "manifest.toml").write_text("\n".join(lines) + "\n")


def test_the_catalogue_names_the_models_a_lab_wants() -> None:
    known = catalogue()
    assert known["efficientnet-lite0"].bundled and known["efficientnet-lite0"].dim == 1280
    assert known["clip-vit-b32"].text_model == "clip-vit-b32-text"
    assert {m.runtime for m in known.values()} == {"onnx", "gguf"}
    vlms = [m for m in known.values() if m.task == "vlm"]
    assert vlms and all(m.file("mmproj") for m in vlms)
    assert all(m.license and m.source and m.files for m in known.values())


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('name = "x"\ntask = "dance"', "invalid manifest"),
        ('name = "Bad Name"\ntask="llm"\nruntime="gguf"\nlicense="x"\nsource="y"\nfiles=[]', "lower-case"),
        ('name="a"\ntask="llm"\nruntime="gguf"\nlicense="x"\nsource="y"\n[[files]]\npath="../evil"', "plain file"),
        ("not toml at all [", "invalid manifest"),
    ],
)
def test_a_bad_manifest_is_refused_with_a_reason(text: str, words: str) -> None:
    with pytest.raises(ModelError, match=words):
        parse_manifest(text)


def test_the_installed_copy_of_every_manifest_reads_back_the_same() -> None:
    for manifest in catalogue().values():
        assert parse_manifest(manifest_toml(manifest).decode()) == manifest


def test_the_bundled_model_is_installed_by_default(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    assert store.status(store.manifest("efficientnet-lite0")) == "bundled"
    assert store.verify("efficientnet-lite0") == []
    with pytest.raises(ModelError, match="bundled"):
        store.remove("efficientnet-lite0")
    with pytest.raises(ModelError, match="not installed"):
        store.require("clip-vit-b32")


def test_import_verify_and_remove_a_tiny_clip(tmp_path: Path) -> None:
    image_dir, text_dir = make_tiny_clip(tmp_path / "carried")
    store = ModelStore(tmp_path / "models")
    store.import_files("tiny-clip", image_dir)
    store.import_files("tiny-clip-text", text_dir)
    assert {m.name: m.status for m in store.statuses()}["tiny-clip"] == "installed"
    assert store.verify("tiny-clip-text") == []
    expected = hashlib.sha256((text_dir / "tokenizer.json").read_bytes()).hexdigest()
    assert store.records("tiny-clip-text")["tokenizer.json"] == expected
    (store.folder("tiny-clip-text") / "tokenizer.json").write_text("{}")  # bit rot
    assert "tokenizer.json: SHA-256" in store.verify("tiny-clip-text")[0]
    store.remove("tiny-clip")
    assert not store.folder("tiny-clip").exists()


def test_import_refuses_missing_files_and_wrong_names(tmp_path: Path) -> None:
    image_dir, _ = make_tiny_clip(tmp_path / "carried")
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ModelError, match="not 'other'"):
        store.import_files("other", image_dir)
    with pytest.raises(ModelError, match="does not exist"):
        store.import_files("tiny-clip", tmp_path / "nowhere")
    (image_dir / "visual.onnx").unlink()
    with pytest.raises(ModelError, match="missing"):
        store.import_files("tiny-clip", image_dir)
    assert not (store.folder("tiny-clip") / "installed.json").exists()


def test_pull_resumes_a_partial_download(tmp_path: Path, file_server: FileServer) -> None:
    body = file_server.files["weights.bin"]
    store = ModelStore(tmp_path / "models")
    write_manifest(store.folder("resumable"), "resumable", file_server.url, hashlib.sha256(body).hexdigest(), len(body))
    (store.folder("resumable") / "weights.bin.part").write_bytes(body[:1000])  # an interrupted pull
    seen: list[int] = []
    store.pull("resumable", lambda done, total: seen.append(done))
    assert (store.folder("resumable") / "weights.bin").read_bytes() == body
    assert "bytes=1000-" in file_server.ranges
    assert seen[-1] == len(body)
    assert store.verify("resumable") == []


def test_pull_refuses_a_changed_upstream_file_and_installs_nothing(tmp_path: Path) -> None:
    original = b"weights as published " * 5000
    server = FileServer({"weights.bin": original})
    try:
        store = ModelStore(tmp_path / "models")
        sha = hashlib.sha256(original).hexdigest()
        write_manifest(store.folder("pinned"), "pinned", server.url, sha, len(original))
        server.files["weights.bin"] = b"weights re-uploaded" + original[19:]  # same size, other bytes
        with pytest.raises(ModelError, match=r"not the pinned .*refused, nothing installed"):
            store.pull("pinned")
        assert sorted(p.name for p in store.folder("pinned").iterdir()) == ["manifest.toml"]  # no file, no .part
        assert store.status(store.manifest("pinned")) == "missing"
        server.files["weights.bin"] = original  # upstream put it back: the pinned bytes install
        store.pull("pinned")
        assert store.status(store.manifest("pinned")) == "installed" and store.verify("pinned") == []
    finally:
        server.httpd.shutdown()


def test_a_manifest_without_a_pinned_revision_is_refused_unless_allowed(
    tmp_path: Path, file_server: FileServer
) -> None:
    body = file_server.files["other.bin"]
    file_server.files["loose.bin"] = body
    store = ModelStore(tmp_path / "models")
    folder = store.folder("loose")
    write_manifest(folder, "loose", file_server.url, pinned=False)
    (folder / "manifest.toml").write_text((folder / "manifest.toml").read_text().replace("weights.bin", "loose.bin"))
    with pytest.raises(ModelError, match=r"not pinned to a revision and a SHA-256.*--allow-unpinned"):
        store.pull("loose")
    assert not (folder / "loose.bin").exists() and not (folder / "installed.json").exists()
    store.pull("loose", allow_unpinned=True)
    recorded = hashlib.sha256(body).hexdigest()
    assert store.records("loose") == {"loose.bin": recorded}
    assert store.manifest("loose").files[0].sha256 == recorded  # the installed manifest now holds it to that hash
    (folder / "loose.bin").write_bytes(b"tampered")
    tampered = hashlib.sha256(b"tampered").hexdigest()
    assert store.verify("loose") == [f"loose.bin: SHA-256 {tampered} differs from {recorded}"]


def test_a_revision_must_be_a_commit_named_in_the_url() -> None:
    head = 'name="a"\ntask="llm"\nruntime="gguf"\nlicense="x"\nsource="y"\n[[files]]\npath="m.gguf"\n'
    with pytest.raises(ModelError, match="full commit hash, not 'main'"):
        parse_manifest(head + 'url="https://h/r/resolve/main/m.gguf"\nrevision="main"')
    with pytest.raises(ModelError, match="must point into revision"):
        parse_manifest(head + f'url="https://h/r/resolve/main/m.gguf"\nrevision="{REV}"')


def test_the_catalogue_pins_every_file_it_can() -> None:
    known = catalogue()
    for name in ("qwen2.5-1.5b-instruct", "qwen2.5-vl-3b", "smolvlm2-2.2b", "qwen3-vl-2b-instruct"):
        assert known[name].unpinned() == [], name
        assert all(f.revision and f.size and f.url and f.revision in f.url for f in known[name].files)
    assert {n for n, m in known.items() if m.unpinned()} == {
        "clip-vit-b32", "clip-vit-b32-text", "siglip2-base-256", "siglip2-base-256-text",
        "qwen3-vl-4b-instruct",  # hashes known, the repository's commit not yet
    }  # fmt: skip


def test_pull_of_an_unreachable_url_says_so(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    write_manifest(store.folder("gone"), "gone", "http://127.0.0.1:9", "0" * 64)
    with pytest.raises(ModelError, match="cannot download"):
        store.pull("gone")


def test_residency_keeps_one_large_model_and_unloads_idle_ones() -> None:
    class Fake:
        def __init__(self, name: str, log: list[str]) -> None:
            self.name, self.log = name, log

        def unload(self) -> None:
            self.log.append(self.name)

    now = [0.0]
    unloaded: list[str] = []
    residency = Residency(max_large=1, clock=lambda: now[0])
    residency.acquire("vlm", lambda: Fake("vlm", unloaded), large=True)
    residency.acquire("embed", lambda: Fake("embed", unloaded))
    now[0] = 10
    same = residency.acquire("vlm", lambda: Fake("again", unloaded), large=True)
    assert same.name == "vlm" and unloaded == []  # resident: not loaded twice
    residency.acquire("llm", lambda: Fake("llm", unloaded), large=True)
    assert unloaded == ["vlm"] and residency.resident() == ["embed", "llm"]
    now[0] = 700
    residency.acquire("llm", lambda: Fake("llm", unloaded), large=True)
    assert residency.unload_idle(600) == ["embed"]
    assert residency.resident() == ["llm"]


def test_onnx_asks_for_what_the_device_probe_allows_and_reports_the_provider_it_got(tmp_path: Path) -> None:
    image_dir, _ = make_tiny_clip(tmp_path)
    model = OnnxModel(image_dir / "visual.onnx")
    assert not model.loaded
    # no NVIDIA driver on this machine: CUDA is not even asked for (the cases: tests/test_gpu_runtime.py)
    assert model.wanted == ["CPUExecutionProvider"]
    assert model.provider == "CPUExecutionProvider"
    assert model.loaded
    model.unload()
    assert not model.loaded


def test_a_tiny_gguf_loads_and_answers_schema_constrained_json(tmp_path: Path) -> None:
    path = make_tiny_gguf(tmp_path / "tiny.gguf")
    chat = GGUFChat(path, n_ctx=256, n_gpu_layers=0)
    residency = Residency()
    schema = {"type": "object", "properties": {"same_dog": {"type": "boolean"}}, "required": ["same_dog"]}
    loaded = residency.acquire("tiny-llm", lambda: chat, large=True)
    answer = loaded.chat_json([{"role": "user", "content": "same dog?"}], schema, max_tokens=64)
    assert isinstance(answer, dict) and isinstance(answer["same_dog"], bool)
    with pytest.raises(GGUFOutputError, match="cut short"):
        loaded.chat_json([{"role": "user", "content": "same dog?"}], schema, max_tokens=2)
    residency.acquire("other-llm", lambda: GGUFChat(path, n_ctx=256, n_gpu_layers=0), large=True)
    assert not chat.loaded  # made room: one large model at a time


def test_a_tiny_vision_language_gguf_sees_an_image(tmp_path: Path) -> None:
    import base64
    import io

    from PIL import Image

    chat = GGUFChat(make_tiny_gguf(tmp_path / "vlm.gguf"), make_tiny_mmproj(tmp_path / "mmproj.gguf"), n_ctx=512,
                    n_gpu_layers=0)  # fmt: skip
    png = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(png, "PNG")
    url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "same dog?"}]
    schema = {"type": "object", "properties": {"same_dog": {"type": "boolean"}}, "required": ["same_dog"]}
    answer = chat.chat_json([{"role": "user", "content": content}], schema, max_tokens=64)
    assert isinstance(answer["same_dog"], bool)
    chat.unload()
    assert not chat.loaded


def test_cli_lists_imports_and_verifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from furrsight.cli import app

    monkeypatch.setenv("FURRSIGHT_DATA", str(tmp_path / "data"))
    image_dir, _ = make_tiny_clip(tmp_path / "carried")
    runner = CliRunner()
    assert runner.invoke(app, ["models", "import", "tiny-clip", str(image_dir)]).exit_code == 0
    listed = runner.invoke(app, ["models", "list"])
    assert "tiny-clip" in listed.output and "efficientnet-lite0" in listed.output
    assert runner.invoke(app, ["models", "verify", "tiny-clip"]).exit_code == 0
    missing = runner.invoke(app, ["models", "verify", "clip-vit-b32"])
    assert missing.exit_code == 1 and "not installed" in missing.output


async def test_models_api_pull_as_a_job_then_verify_and_remove(
    client: AsyncTestClient, worker: WorkerProcess, settings: Settings, file_server: FileServer
) -> None:
    body = file_server.files["weights.bin"]
    sha = hashlib.sha256(body).hexdigest()
    write_manifest(settings.data_path / "models" / "api-pulled", "api-pulled", file_server.url, sha, len(body))
    listed = (await client.get("/api/v1/models")).json()
    status = {m["name"]: m["status"] for m in listed}
    assert status["efficientnet-lite0"] == "bundled" and status["api-pulled"] == "missing"
    response = await client.post("/api/v1/models/api-pulled/pull")
    assert response.status_code == 202
    job = await wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["progress_done"] == len(body)
    response = await client.post("/api/v1/models/api-pulled/verify")
    assert response.status_code == 202 and response.headers["location"] == f"/api/v1/jobs/{response.json()['id']}"
    verified = await wait_for_job(client, response.json()["id"])
    assert verified["status"] == "succeeded", verified
    assert verified["progress_done"] == verified["progress_total"] == len(body)
    assert verified["counters"] == {"files": 1, "bad": 0}
    (settings.data_path / "models" / "api-pulled" / "weights.bin").write_bytes(b"rot")
    broken = await wait_for_job(client, (await client.post("/api/v1/models/api-pulled/verify")).json()["id"])
    assert broken["status"] == "failed" and "weights.bin: SHA-256" in broken["error"]
    assert broken["counters"] == {"files": 1, "bad": 1}
    assert (await client.delete("/api/v1/models/api-pulled")).status_code == 204
    page = await client.get("/models")
    assert page.status_code == 200 and "efficientnet-lite0" in page.text and "Pull" in page.text
    import onnxruntime

    web = re.search(r"images on\s+<strong>([^<]+)</strong> only.*?here offers ([^)]*)\)", page.text, re.S)
    assert web is not None  # the web process is CPU-only by design, whatever onnxruntime offers
    assert web.groups() == ("CPUExecutionProvider", ", ".join(onnxruntime.get_available_providers()))


async def test_models_api_refuses_unknown_models(client: AsyncTestClient) -> None:
    response = await client.post("/api/v1/models/no-such-model/pull")
    assert response.status_code == 404 and "unknown model" in response.json()["error"]
    response = await client.post("/api/v1/models/clip-vit-b32/import", json={"path": "relative"})
    assert response.status_code == 400


def test_cli_pull_refuses_unpinned_files_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_server: FileServer
) -> None:
    from furrsight.cli import app

    monkeypatch.setenv("FURRSIGHT_DATA", str(tmp_path / "data"))
    write_manifest(tmp_path / "data" / "models" / "cli-loose", "cli-loose", file_server.url, pinned=False)
    runner = CliRunner()
    refused = runner.invoke(app, ["models", "pull", "cli-loose"])
    assert refused.exit_code == 1 and "--allow-unpinned" in refused.output
    allowed = runner.invoke(app, ["models", "pull", "cli-loose", "--allow-unpinned"])
    sha = hashlib.sha256(file_server.files["weights.bin"]).hexdigest()
    assert allowed.exit_code == 0 and f"weights.bin: unpinned, recorded sha256 {sha}" in allowed.output


async def test_a_non_commercial_model_says_so_before_it_is_pulled(
    client: AsyncTestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from furrsight.cli import app

    refused = await client.post("/api/v1/models/qwen2.5-vl-3b/pull", json={})
    assert refused.status_code == 400
    assert refused.json()["error"] == (
        "qwen2.5-vl-3b is licensed Qwen Research License (non-commercial research use), which does not allow "
        "commercial use: pull it only for non-commercial use, and say so (accept_licence)"
    )
    page = await client.get("/models")
    assert "non-commercial use only" in page.text
    monkeypatch.setenv("FURRSIGHT_DATA", str(tmp_path / "data"))
    cli = CliRunner().invoke(app, ["models", "pull", "qwen2.5-vl-3b"])
    assert cli.exit_code == 1 and "does not allow commercial use" in cli.output and "--accept-licence" in cli.output
