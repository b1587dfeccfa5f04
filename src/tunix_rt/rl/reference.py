"""The KL term's reference policy (grpo.beta > 0): the starting model, never trained.

Full fine-tuning keeps a frozen second copy of the starting model. LoRA keeps no second model:
- fresh adapters (lora_B starts at zero, so the policy starts as the base): the policy itself with
  its adapters switched off (peft's `disable_adapter()`) is exactly the starting model;
- a continued adapter (a LoRA SFT run): switching adapters off would give the base, not the SFT
  policy GRPO started from. As TRL's GRPOTrainer does since trl PR 4723 ("re-training an existing
  adapter: an initial copy is loaded under the name ref"), a frozen copy of the starting adapter
  sits beside the trained one and is switched on for the reference pass: adapter-sized, not a model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tunix_rt.rl.sampling import UpdateBatch, eval_logprobs

FROZEN_COPY = "starting model, frozen copy"
ADAPTERS_OFF = "base model (the policy with its adapters disabled)"
STARTING_ADAPTER = "starting adapter (a frozen copy beside the trained one)"
REF_ADAPTER = "ref"  # the frozen copy's adapter name (TRL's name for it)


@dataclass
class Reference:
    model: Any
    """The frozen copy, or the LoRA policy itself."""
    kind: str
    """FROZEN_COPY | ADAPTERS_OFF | STARTING_ADAPTER (recorded in the manifest)."""

    @classmethod
    def frozen_copy(cls, model: Any) -> Reference:
        model.eval()
        for param in model.parameters():
            param.requires_grad_(False)
        return cls(model, FROZEN_COPY)

    @classmethod
    def adapters_off(cls, policy: Any) -> Reference:
        return cls(policy, ADAPTERS_OFF)

    @classmethod
    def starting_adapter(cls, policy: Any, adapter_dir: Path) -> Reference:
        """Loads adapter_dir again as a frozen adapter named REF_ADAPTER beside the active one
        (fp32, as peft's autocast_adapter_dtype loads it; the trained adapter stays active)."""
        policy.load_adapter(adapter_dir, adapter_name=REF_ADAPTER, is_trainable=False)
        return cls(policy, STARTING_ADAPTER)

    def logprobs(self, batch: UpdateBatch, compute_dtype: torch.dtype | None) -> torch.Tensor:
        """log p_ref(target) at every position [B, L - 1], without dropout or gradient."""
        with torch.no_grad(), self._switched_on():
            return eval_logprobs(self.model, batch, compute_dtype)

    @contextlib.contextmanager
    def _switched_on(self) -> Iterator[None]:
        if self.kind == ADAPTERS_OFF:
            with self.model.disable_adapter():
                yield
            return
        if self.kind != STARTING_ADAPTER:
            yield
            return
        trained = self.model.active_adapter
        # inference_mode: the copy stays frozen; set_adapter(trained) below makes the trained
        # adapter trainable again, as it was (peft's set_adapter sets requires_grad both ways).
        self.model.set_adapter(REF_ADAPTER, inference_mode=True)
        try:
            yield
        finally:
            self.model.set_adapter(trained)

    def release(self) -> None:
        """Drop the frozen adapter copy before the final model is saved (it is not part of it)."""
        if self.kind == STARTING_ADAPTER:
            self.model.delete_adapter(REF_ADAPTER)
