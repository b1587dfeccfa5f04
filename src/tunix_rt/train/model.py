"""Model and tokenizer: pretrained (hub, local directory, GGUF file, named model: train/sources.py), or built from scratch.

From scratch (the embedded default; nothing can be downloaded on an offline machine): a BPE
tokenizer trained on the training texts with the `tokenizers` library, digits always split one by
one (so arithmetic sees every digit the same way), then a small Llama/GPT-2/Qwen2 built from its
config with `from_config`. Both are saved with `save_pretrained`, so the result loads with plain
`AutoTokenizer` / `AutoModelForCausalLM`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from tunix_rt.config import ModelConfig
from tunix_rt.errors import ModelError
from tunix_rt.train.hub import hub_reachable
from tunix_rt.train.sources import (
    SOURCE_FILE,
    ModelSource,
    converted_dir,
    offline_message,
    resolve_model_source,
    weights_dir,
)

SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<bos>", "eos_token": "<eos>"}


# --- tokenizer ---------------------------------------------------------------------------------


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer trained on `texts`, wrapped as a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **SPECIAL_TOKENS)


def train_scratch_tokenizer(traces: Iterable[Any], system_instruction: str | None, vocab_size: int) -> Any:
    """The from-scratch tokenizer, trained on exactly the texts the model will be trained on."""
    from tunix_rt.train.render import render_completion, render_prompt

    texts = (render_prompt(t.prompt, None, system_instruction) + render_completion(t) for t in traces)
    return train_tokenizer(texts, vocab_size)


def finish_tokenizer(tokenizer: Any) -> Any:
    """Batches need a pad id; models like GPT-2 ship without one, so reuse EOS (masked out anyway)."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


# --- model -------------------------------------------------------------------------------------


def attention_for(requested: str, device_type: str) -> str:
    """The attention kernel: as configured, or for `auto` the faster one on this device type.

    On CPU, sdpa's flash-attention backward costs more than eager attention for the short
    sequences of reasoning traces (benchmarks/train_throughput.py: 1.3x); on GPUs sdpa wins.
    """
    if requested == "flash_attention_2":
        if device_type != "cuda":
            raise ModelError(
                f"model.attn_implementation flash_attention_2 runs on CUDA GPUs only, not on {device_type}: "
                "use auto (eager on CPU, sdpa on GPUs)"
            )
        if importlib.util.find_spec("flash_attn") is None:
            raise ModelError(
                "model.attn_implementation flash_attention_2 needs the flash-attn package, which is not "
                "installed: `pip install flash-attn --no-build-isolation` (built for your torch and CUDA), "
                "or use auto"
            )
    if requested != "auto":
        return requested
    return "eager" if device_type == "cpu" else "sdpa"


def build_scratch_model(
    cfg: ModelConfig, tokenizer: Any, max_positions: int, attention: str, *, on_meta: bool = False
) -> Any:
    """A freshly initialised model of cfg.architecture sized by the cfg fields (`on_meta`: shapes
    only, no memory and no random numbers drawn, for FSDP to shard before anything is allocated)."""
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, Qwen2Config

    common = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "tie_word_embeddings": True,
    }
    intermediate = cfg.intermediate_size or 4 * cfg.hidden_size
    if cfg.architecture == "gpt2":
        config = GPT2Config(
            n_embd=cfg.hidden_size,
            n_layer=cfg.num_layers,
            n_head=cfg.num_heads,
            n_inner=intermediate,
            n_positions=max_positions,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            **common,
        )
    else:
        config_cls = LlamaConfig if cfg.architecture == "llama" else Qwen2Config
        config = config_cls(
            hidden_size=cfg.hidden_size,
            intermediate_size=intermediate,
            num_hidden_layers=cfg.num_layers,
            num_attention_heads=cfg.num_heads,
            num_key_value_heads=cfg.num_heads,
            max_position_embeddings=max_positions,
            **common,
        )
    if on_meta:
        return empty_model(config, attention)
    return AutoModelForCausalLM.from_config(config, attn_implementation=attention)


def empty_model(config: Any, attention: str, trust_remote_code: bool = False) -> Any:
    """The model `config` describes on the meta device: every parameter and buffer has its shape
    and dtype (float32, as load_pretrained loads) but no storage. Ties (a tied LM head) hold."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(
            config, attn_implementation=attention, dtype=torch.float32, trust_remote_code=trust_remote_code
        )


def use_fused_activations(model: Any) -> int:
    """Swap GPT-2's tanh-approximated GELU, written as eight elementwise ops, for torch's single kernel.

    transformers' `gelu_new` (NewGELUActivation) and `gelu_pytorch_tanh` (GELUTanh) are the same
    function, 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))); the fused one is about a fifth of a
    GPT-2 training step faster on CPU and avoids bf16 rounding between the eight ops. Only the
    module in memory changes: the config (and a saved model) still says gelu_new. Returns how
    many modules were swapped.
    """
    from transformers.activations import GELUTanh, NewGELUActivation

    swapped = 0
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is NewGELUActivation:
                setattr(parent, name, GELUTanh())
                swapped += 1
    return swapped


def model_source(cfg: ModelConfig) -> ModelSource:
    """The resolved source of cfg's pretrained model (for load_pretrained and the manifest)."""
    return resolve_model_source(str(cfg.model_id), cfg.revision, cfg.gguf_file)


def load_pretrained(
    cfg: ModelConfig,
    attention: str,
    source: str | Path | None = None,
    *,
    resolved: ModelSource | None = None,
    log: Any = None,
    weights: bool = True,
) -> tuple[Any, Any]:
    """(tokenizer, model) from the hub, a local directory, a GGUF file or a named model.

    Offline misses are explained, no traceback. `source` (a directory) overrides cfg.model_id:
    resume loads from a checkpoint directory. `resolved`: the source the caller already resolved
    (and recorded); resolved here when not given. A GGUF file is converted once, then cached.
    `weights=False`: the model is built from its config on the meta device and no weight file is
    read (FSDP ranks that receive their shards from rank 0 or read them from a sharded checkpoint).
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if source is not None:
        resolved = ModelSource("local", str(source), str(source))
    elif resolved is None:
        resolved = model_source(cfg)
    name = weights_dir(resolved, log=log)
    kwargs: dict[str, Any] = {"trust_remote_code": cfg.trust_remote_code}
    if resolved.kind == "hub":
        if resolved.revision:
            kwargs["revision"] = resolved.revision
        kwargs["local_files_only"] = not hub_reachable()
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
        if weights:
            model = AutoModelForCausalLM.from_pretrained(
                name, attn_implementation=attention, dtype=torch.float32, **kwargs
            )
        else:
            config = AutoConfig.from_pretrained(name, **kwargs)
            model = empty_model(config, attention, cfg.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelError(
            explain_load_failure(name, resolved.revision, exc, kwargs.get("local_files_only"))
        ) from exc
    return finish_tokenizer(tokenizer), model


def check_model_available(cfg: ModelConfig) -> str:
    """For --dry-run: where the weights are (local directory, GGUF, cache, hub); ModelError if nowhere."""
    from transformers import AutoConfig

    resolved = model_source(cfg)
    if resolved.kind == "local":
        return "local directory"
    if resolved.kind in ("gguf", "package"):
        where = f"GGUF file {resolved.id_or_path} ({resolved.quantisation})"
        if resolved.package:
            where += f" from the {resolved.package} package"
        done = (converted_dir(str(resolved.file_sha256)) / SOURCE_FILE).is_file()
        return where + (", converted" if done else ", converted to safetensors on first use")
    name = resolved.id_or_path
    kwargs: dict[str, Any] = {"revision": resolved.revision} if resolved.revision else {}
    try:
        AutoConfig.from_pretrained(
            name, local_files_only=True, trust_remote_code=cfg.trust_remote_code, **kwargs
        )
        return "in the local Hugging Face cache"
    except (OSError, ValueError) as exc:
        if not hub_reachable():
            raise ModelError(explain_load_failure(name, resolved.revision, exc, True)) from exc
    return "on the hub (will be downloaded)"


def load_tokenizer_only(cfg: ModelConfig) -> Any:
    """The tokenizer of cfg's pretrained model without its weights (for --dry-run's token counts).

    A GGUF source not converted yet is read for its tokenizer only: no conversion happens here.
    """
    from transformers import AutoTokenizer

    resolved = model_source(cfg)
    kwargs: dict[str, Any] = {"trust_remote_code": cfg.trust_remote_code}
    if resolved.kind in ("gguf", "package"):
        converted = converted_dir(str(resolved.file_sha256))
        if (converted / SOURCE_FILE).is_file():
            return finish_tokenizer(AutoTokenizer.from_pretrained(converted, **kwargs))
        file = Path(resolved.id_or_path)
        return finish_tokenizer(AutoTokenizer.from_pretrained(file.parent, gguf_file=file.name, **kwargs))
    if resolved.revision:
        kwargs["revision"] = resolved.revision
    return finish_tokenizer(
        AutoTokenizer.from_pretrained(resolved.id_or_path, local_files_only=True, **kwargs)
    )


def explain_load_failure(name: str, revision: str | None, exc: Exception, offline: bool | None) -> str:
    text = str(exc)
    rev = f" (revision {revision})" if revision else ""
    if offline:
        return offline_message(name, revision)
    if "gated" in text.lower() or "401" in text or "403" in text:
        return (
            f"model '{name}'{rev} is gated: accept its licence on its hub page and log in "
            f"(`hf auth login` or HF_TOKEN). Hub said: {text.splitlines()[0]}"
        )
    return f"cannot load model '{name}'{rev}: {text.splitlines()[0] if text else type(exc).__name__}"


def cast_as_loading_does(model: Any, dtype: torch.dtype) -> Any:
    """model.to(dtype), except the buffers no checkpoint holds (Llama's rotary inv_freq): those
    from_pretrained(dtype=...) computes in float32 and leaves there, so a cast copy must too, or
    its positions (and its generations) differ from the same model loaded from disk."""
    saved = set(model.state_dict())
    unsaved = [(name, buffer) for name, buffer in model.named_buffers() if name not in saved]
    model.to(dtype)
    for name, buffer in unsaved:
        owner, _, leaf = name.rpartition(".")
        model.get_submodule(owner).register_buffer(leaf, buffer, persistent=False)
    return model


def count_parameters(model: Any) -> int:
    # Tied embeddings are one tensor; count each parameter once.
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
