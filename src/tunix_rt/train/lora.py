"""LoRA through peft: adapters on a frozen base, their checkpoint state, and the final model.

Dtypes: the frozen base is held in the compute dtype (bf16 where the device runs it) so no step
casts its weights and it takes half the memory of fp32; adapters and modules_to_save stay fp32
(peft's `autocast_adapter_dtype` upcasts bf16/fp16 adapters), so their optimizer updates are not
lost to bf16 rounding. Training runs under autocast, as full fine-tuning does, which is also what
lets the bf16 activations meet the fp32 adapters. peft would first copy each LoRA layer's input to
the adapter's fp32 (and its gradient back), only for autocast to copy it to bf16 again for the
matmul: with a bf16 base and no LoRA dropout that round trip is turned off
(`_autocast_feeds_the_adapters`), with the same numbers to the bit (tested), and two activation
copies fewer per adapted layer and step (~4% of a SmolLM2 LoRA step on a 2-core EPYC). With
dropout it stays: the 1/(1-p) scaling would otherwise be applied in bf16 (1.109375 for 1.1111 at
p = 0.1).

The final model is written twice: `final_dir/` the merged model (plain AutoModelForCausalLM
loads it, evaluation generates with it at full speed), `final_dir/adapter/` the adapter alone
(plain `PeftModel.from_pretrained(base, final_dir/"adapter")` loads it). Merging works on a copy,
never on the training model: merging into bf16 weights and unmerging again would not give back
the same weights.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from tunix_rt.config import LoraConfig
from tunix_rt.errors import ModelError
from tunix_rt.train.model import cast_as_loading_does

ADAPTER_DIR = "adapter"
# In a LoRA checkpoint directory: the trainable tensors (adapters, modules_to_save) by parameter name.
TRAINABLE_FILE = "trainable.safetensors"


def is_peft_model(model: Any) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def apply_lora(model: Any, cfg: LoraConfig, compute_dtype: torch.dtype | None) -> Any:
    """`model` wrapped with fresh LoRA adapters: base frozen in compute_dtype (fp32 when None), adapters fp32."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    if compute_dtype is not None:  # rotary frequencies stay float32, as from_pretrained(dtype=) keeps them
        cast_as_loading_does(model, compute_dtype)
    peft_cfg = PeftLoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=cfg.target_modules
        if isinstance(cfg.target_modules, str)
        else list(cfg.target_modules),
        modules_to_save=list(cfg.modules_to_save) or None,
        task_type="CAUSAL_LM",
    )
    try:
        peft_model = get_peft_model(model, peft_cfg, autocast_adapter_dtype=True)
    except ValueError as exc:  # e.g. a target module name the model does not have
        raise ModelError(f"lora: {str(exc).splitlines()[0]}") from exc
    return _autocast_feeds_the_adapters(_trainable_fp32(peft_model), compute_dtype)


def load_lora(model: Any, adapter_dir: Path, compute_dtype: torch.dtype | None) -> Any:
    """`model` wrapped with the saved adapter in adapter_dir, trainable, to continue training it:
    the same dtypes as apply_lora (base frozen in compute_dtype, adapters fp32)."""
    from peft import PeftModel

    if compute_dtype is not None:  # rotary frequencies stay float32, as from_pretrained(dtype=) keeps them
        cast_as_loading_does(model, compute_dtype)
    try:
        peft_model = PeftModel.from_pretrained(
            model, adapter_dir, is_trainable=True, autocast_adapter_dtype=True
        )
    except (OSError, ValueError, KeyError) as exc:  # no adapter files, or an adapter for another model
        raise ModelError(f"{adapter_dir}: cannot load the LoRA adapter: {str(exc).splitlines()[0]}") from exc
    return _autocast_feeds_the_adapters(_trainable_fp32(peft_model), compute_dtype)


def _trainable_fp32(peft_model: Any) -> Any:
    # autocast_adapter_dtype covers the LoRA matrices; a modules_to_save copy keeps the base dtype.
    for param in peft_model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
    return peft_model


def _autocast_feeds_the_adapters(peft_model: Any, compute_dtype: torch.dtype | None) -> Any:
    """With a base in compute_dtype, the recipes run every forward of the adapted model under
    autocast (training steps, a rank's empty micro-batch, validation, GRPO's sampling and
    log-probs; evaluation uses a merged copy): peft's cast of each input to the fp32 adapter
    weights is undone by autocast before the matmul, so it is skipped. A forward outside autocast
    fails loudly on the dtype mismatch instead of computing in fp32 by accident. Layers with LoRA
    dropout keep the cast, so their dropout scales in fp32 as peft's does."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    if compute_dtype is None:
        return peft_model
    for module in peft_model.modules():
        dropouts = getattr(module, "lora_dropout", {})
        if isinstance(module, BaseTunerLayer) and not any(
            isinstance(d, torch.nn.Dropout) for d in dropouts.values()
        ):
            module.cast_input_dtype_enabled = False
    return peft_model


def trainable_state(model: Any) -> dict[str, torch.Tensor]:
    """The trainable tensors by parameter name: adapters and modules_to_save, nothing frozen."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: Any, state: dict[str, torch.Tensor]) -> None:
    """Put a `trainable_state` back; ModelError when it was taken from differently adapted model."""
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    missing, unexpected = sorted(params.keys() - state.keys()), sorted(state.keys() - params.keys())
    if missing or unexpected:
        raise ModelError(
            f"the checkpoint's adapter does not match this LoRA config: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]} (was lora.r, target_modules or modules_to_save changed?)"
        )
    with torch.no_grad():
        for name, param in params.items():
            if state[name].shape != param.shape:
                raise ModelError(
                    f"the checkpoint's adapter tensor {name} has shape {tuple(state[name].shape)}, "
                    f"this model's {tuple(param.shape)} (was lora.r changed?)"
                )
            param.copy_(state[name])


def save_trainable_file(model: Any, directory: Path) -> Path:
    """Write `trainable_state(model)` into directory/TRAINABLE_FILE (a checkpoint's model part)."""
    from safetensors.torch import save_file

    path = Path(directory) / TRAINABLE_FILE
    save_file({k: v.contiguous().cpu() for k, v in trainable_state(model).items()}, str(path))
    return path


def load_trainable_file(model: Any, directory: Path) -> None:
    """Put directory/TRAINABLE_FILE back into `model` (see load_trainable_state)."""
    from safetensors.torch import load_file

    path = Path(directory) / TRAINABLE_FILE
    if not path.is_file():
        raise ModelError(f"{path} is missing: {directory} is not a LoRA checkpoint")
    device = next(p.device for p in model.parameters() if p.requires_grad)
    load_trainable_state(model, load_file(str(path), device=str(device)))


def merged_copy(model: Any, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> Any:
    """A plain transformers model with the adapters merged in (for saving and for generation).

    `model` is untouched. The copy is made on `device` in `dtype`: fp32 keeps the adapter update
    exact on top of the (possibly bf16) base.
    """
    twin = cast_as_loading_does(copy.deepcopy(model).to(device), dtype)  # rotary frequencies stay float32
    return twin.merge_and_unload()


def save_final(model: Any, tokenizer: Any, final_dir: Path, dtype: torch.dtype = torch.float32) -> None:
    """final_dir/: the merged model and tokenizer; final_dir/adapter/: the adapter and tokenizer.

    The merged weights are the training base (bf16 when it was held in bf16) plus the adapter
    update computed in `dtype`; loading the adapter onto the same base gives the same logits.
    """
    final_dir = Path(final_dir)
    model.save_pretrained(final_dir / ADAPTER_DIR)
    tokenizer.save_pretrained(final_dir / ADAPTER_DIR)
    merged = merged_copy(model, dtype)
    merged.save_pretrained(final_dir)
    tokenizer.save_pretrained(final_dir)


@contextlib.contextmanager
def adapters_merged(model: Any) -> Iterator[None]:
    """Inside: the adapters merged into the base weights, so a forward (generation) runs as a plain
    model without the adapters' extra matmuls per layer. After: the base weights restored bit for
    bit from a copy taken before merging (unmerging by subtraction gives them back only up to
    rounding), and the adapters, which merging only reads, untouched. Costs one transient copy of
    the adapted weights. Only for a float32 base: merged into bf16 weights, a small adapter update
    would be rounded away and generation would not sample the policy being trained.
    """
    from peft.tuners.lora import LoraLayer

    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    kept = [layer.get_base_layer().weight.detach().clone() for layer in layers]
    with torch.no_grad():
        model.merge_adapter()
    try:
        yield
    finally:
        with torch.no_grad():
            model.unmerge_adapter()
            for layer, weight in zip(layers, kept, strict=True):
                layer.get_base_layer().weight.copy_(weight)


def enable_gradient_checkpointing(model: Any) -> None:
    """Recompute each decoder layer's activations in backward instead of keeping them.

    Non-reentrant checkpointing (use_reentrant=False): it handles inputs that need no gradient,
    keyword arguments and a frozen base. A PEFT model's frozen embeddings must still hand the
    checkpointed layers an input that requires grad: transformers 5 installs that hook
    (enable_input_require_grads) for every input_ids model; it is added here when it did not.
    Transformers only checkpoints in train mode, and a KV cache has no use while training.
    """
    base = model.get_base_model() if is_peft_model(model) else model
    if not getattr(base, "supports_gradient_checkpointing", False):
        raise ModelError(f"training.gradient_checkpointing: {type(base).__name__} does not support it")
    base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    if is_peft_model(model) and not getattr(base, "_require_grads_hooks", None):
        base.enable_input_require_grads()
    base.config.use_cache = False
