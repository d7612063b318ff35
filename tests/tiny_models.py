"""Tiny real models for tests, written on the fly (no downloads):

* ``make_tiny_clip(folder)``: a CLIP-type pair in ONNX -- an image tower (conv -> pool -> project
  -> L2) and a text tower (embedding lookup -> mean -> L2) sharing ``dim`` -- plus a word-level
  ``tokenizers`` tokenizer, each with its ``manifest.toml``, ready for ``ModelStore.import_files``;
* ``make_tiny_gguf(path, ...)``: a random llama-architecture GGUF chat model (byte vocabulary, a
  chat template) that llama.cpp loads in milliseconds;
* ``make_tiny_mmproj(path, ...)``: a random LLaVA-style vision projector (CLIP ViT + MLP) for it,
  which ``MTMDChatHandler`` loads and uses to encode an image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = [helper.make_opsetid("", 17)]
WORDS = ["[PAD]", "[UNK]", "dog", "cat", "red", "blue", "green", "poodle", "schnauzer", "after", "before", "cut"]


def _save(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=OPSET, ir_version=9)  # onnxruntime 1.31 reads IR <= 13
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def image_tower(path: Path, dim: int = 16, size: int = 32, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    conv = numpy_helper.from_array(rng.normal(size=(dim, 3, 4, 4)).astype(np.float32), "conv_w")
    proj = numpy_helper.from_array(rng.normal(size=(dim, dim)).astype(np.float32), "proj")
    nodes = [
        helper.make_node("Conv", ["pixels", "conv_w"], ["c"], strides=[4, 4]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", "proj"], ["e"]),
        helper.make_node("LpNormalization", ["e"], ["embedding"], axis=1, p=2),
    ]
    graph = helper.make_graph(
        nodes, "tiny_image", [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", 3, size, size])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", dim])], [conv, proj],
    )  # fmt: skip
    _save(graph, path)


def text_tower(path: Path, dim: int = 16, vocab: int = len(WORDS), seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    table = numpy_helper.from_array(rng.normal(size=(vocab, dim)).astype(np.float32), "table")
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["g"]),
        helper.make_node("ReduceMean", ["g"], ["m"], axes=[1], keepdims=0),
        helper.make_node("LpNormalization", ["m"], ["embedding"], axis=1, p=2),
    ]
    graph = helper.make_graph(
        nodes, "tiny_text", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["n", "len"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", dim])], [table],
    )  # fmt: skip
    _save(graph, path)


def tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))


def make_tiny_clip(folder: Path, name: str = "tiny-clip", dim: int = 16, size: int = 32) -> tuple[Path, Path]:
    """Write ``folder/<name>/`` (image tower) and ``folder/<name>-text/`` (text tower + tokenizer),
    each with a manifest; returns the two folders."""
    image_dir, text_dir = folder / name, folder / f"{name}-text"
    image_tower(image_dir / "visual.onnx", dim, size)
    text_tower(text_dir / "textual.onnx", dim)
    tokenizer(text_dir / "tokenizer.json")
    (image_dir / "manifest.toml").write_text(f"""
name = "{name}"
task = "image-embed"
runtime = "onnx"
license = "CC0-1.0"
source = "tests/tiny_models.py"
dim = {dim}
text_model = "{name}-text"
[preprocess]
size = {size}
mean = [0.5, 0.5, 0.5]
std = [0.5, 0.5, 0.5]
crop = "center"
[[files]]
path = "visual.onnx"
""")
    (text_dir / "manifest.toml").write_text(f"""
name = "{name}-text"
task = "text-embed"
runtime = "onnx"
license = "CC0-1.0"
source = "tests/tiny_models.py"
dim = {dim}
[text]
max_length = 8
pad_id = 0
[[files]]
path = "textual.onnx"
[[files]]
path = "tokenizer.json"
role = "tokenizer"
""")
    return image_dir, text_dir


def make_tiny_gguf(
    path: Path,
    *,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_ff: int = 128,
    n_ctx: int = 512,
    seed: int = 0,
    chat_template: str | None = None,
) -> Path:
    """Write a random llama-architecture GGUF chat model (~0.5 MB) with a byte-level SentencePiece
    vocabulary and a chat template; llama-cpp-python loads it and answers schema-constrained chat."""
    import gguf

    rng = np.random.default_rng(seed)
    tokens = [b"<unk>", b"<s>", b"</s>"] + [f"<0x{b:02X}>".encode() for b in range(256)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.BYTE] * 256
    vocab = len(tokens)
    template = chat_template or (
        "{% for m in messages %}<|{{ m['role'] }}|>"
        "{% if m['content'] is string %}{{ m['content'] }}"
        "{% else %}{% for p in m['content'] %}{% if p['type'] == 'text' %}{{ p['text'] }}{% endif %}{% endfor %}"
        "{% endif %}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-test-llama")
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * vocab)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_chat_template(template)

    def tensor(name: str, *shape: int) -> None:
        scale = 1.0 if len(shape) == 1 else 0.02
        data = np.ones(shape, np.float32) if len(shape) == 1 else rng.normal(0, scale, size=shape).astype(np.float32)
        writer.add_tensor(name, data)

    tensor("token_embd.weight", vocab, n_embd)
    tensor("output_norm.weight", n_embd)
    tensor("output.weight", vocab, n_embd)
    for i in range(n_layer):
        tensor(f"blk.{i}.attn_norm.weight", n_embd)
        for part in ("q", "k", "v"):
            tensor(f"blk.{i}.attn_{part}.weight", n_embd, n_embd)
        tensor(f"blk.{i}.attn_output.weight", n_embd, n_embd)
        tensor(f"blk.{i}.ffn_norm.weight", n_embd)
        tensor(f"blk.{i}.ffn_gate.weight", n_ff, n_embd)
        tensor(f"blk.{i}.ffn_up.weight", n_ff, n_embd)
        tensor(f"blk.{i}.ffn_down.weight", n_embd, n_ff)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def make_tiny_mmproj(
    path: Path,
    *,
    n_embd_llm: int = 64,
    width: int = 32,
    n_ff: int = 64,
    image_size: int = 32,
    patch_size: int = 8,
    n_layer: int = 1,
    n_head: int = 2,
    seed: int = 0,
) -> Path:
    """Write a random LLaVA-style mmproj (~0.1 MB): a ViT of ``n_layer`` blocks and a two-layer MLP
    projecting to ``n_embd_llm`` (the LLM's embedding width, 64 for ``make_tiny_gguf``'s default)."""
    import gguf

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "clip")
    writer.add_bool("clip.has_vision_encoder", True)
    writer.add_bool("clip.has_text_encoder", False)
    writer.add_bool("clip.has_llava_projector", True)
    writer.add_string("clip.projector_type", "mlp")
    writer.add_bool("clip.use_gelu", True)
    for key, value in (("image_size", image_size), ("patch_size", patch_size), ("embedding_length", width),
                       ("feed_forward_length", n_ff), ("projection_dim", n_embd_llm), ("block_count", n_layer),
                       ("attention.head_count", n_head)):  # fmt: skip
        writer.add_uint32(f"clip.vision.{key}", value)
    writer.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-6)
    writer.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    writer.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    def tensor(name: str, *shape: int, ones: bool = False) -> None:
        data = np.ones(shape, np.float32) if ones else rng.normal(0, 0.02, size=shape).astype(np.float32)
        writer.add_tensor(name, data)

    tensor("v.patch_embd.weight", width, 3, patch_size, patch_size)
    tensor("v.class_embd", width)
    tensor("v.position_embd.weight", (image_size // patch_size) ** 2 + 1, width)
    tensor("v.pre_ln.weight", width, ones=True)
    tensor("v.pre_ln.bias", width)
    for i in range(n_layer):
        for part in ("attn_q", "attn_k", "attn_v", "attn_out"):
            tensor(f"v.blk.{i}.{part}.weight", width, width)
            tensor(f"v.blk.{i}.{part}.bias", width)
        for part in ("ln1", "ln2"):
            tensor(f"v.blk.{i}.{part}.weight", width, ones=True)
            tensor(f"v.blk.{i}.{part}.bias", width)
        tensor(f"v.blk.{i}.ffn_up.weight", n_ff, width)
        tensor(f"v.blk.{i}.ffn_up.bias", n_ff)
        tensor(f"v.blk.{i}.ffn_down.weight", width, n_ff)
        tensor(f"v.blk.{i}.ffn_down.bias", width)
    tensor("mm.0.weight", n_embd_llm, width)
    tensor("mm.0.bias", n_embd_llm)
    tensor("mm.2.weight", n_embd_llm, n_embd_llm)
    tensor("mm.2.bias", n_embd_llm)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
