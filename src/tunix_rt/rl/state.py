"""Where a GRPO run is: what its checkpoints save besides tensors, the sampling generator included.

The checkpoint module (train/checkpoint.py) saves and restores it as it does SFT's TrainState
(`Checkpointer(state_type=GrpoState)`). The data order is a pure function of (seed, step)
(rl/data.step_prompts), so the step is the data position; the sampling generator's state is what
makes a resumed run draw exactly the completions an uninterrupted one would.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class GrpoState:
    step: int = 0
    generated_tokens: int = 0
    updated_tokens: int = 0
    loop_seconds: float = 0.0
    sampler: torch.Generator = field(default_factory=torch.Generator)
    """Draws every sampled completion; seeded from training.seed, saved in each checkpoint."""

    @classmethod
    def start(cls, seed: int) -> GrpoState:
        return cls(sampler=torch.Generator().manual_seed(seed))

    def to_json(self) -> dict[str, Any]:
        state = bytes(self.sampler.get_state().numpy().tobytes())
        return {
            "step": self.step,
            "generated_tokens": self.generated_tokens,
            "updated_tokens": self.updated_tokens,
            "loop_seconds": self.loop_seconds,
            "sampling_rng": base64.b64encode(state).decode("ascii"),
        }

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> GrpoState:
        sampler = torch.Generator()
        rng = bytearray(base64.b64decode(saved["sampling_rng"]))
        sampler.set_state(torch.frombuffer(rng, dtype=torch.uint8))
        keys = ("step", "generated_tokens", "updated_tokens", "loop_seconds")
        return cls(**{key: saved[key] for key in keys}, sampler=sampler)
