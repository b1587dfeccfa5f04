"""The `grpo:` config section: every GRPO knob, each with a documented default.

Validated like the rest of the config (pydantic, unknown keys refused). The recipe also reads the
`training:` section: `batch_size` is the number of prompts per step (each sampled
`num_generations` times), and `max_steps`/`num_epochs`, `learning_rate`, `optimizer`,
`max_grad_norm`, `logging_steps`, `save_every_steps`, `save_total_limit`, `seed` and `eval_set`
mean what they mean for SFT.

Defaults follow TRL's GRPOConfig where the choice is not ours to make (epsilon 0.2, beta 0.0,
num_iterations 1, temperature 1.0, top_p 1.0); the loss is aggregated per token as DAPO does.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

BUILTIN_REWARDS = ("correctness", "format", "length")


class GrpoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    num_generations: int = Field(8, ge=2)
    """G: completions sampled per prompt. Advantages compare a completion with its own group, so
    G >= 2; larger groups give a less noisy baseline and fewer zero-signal groups."""
    temperature: float = Field(1.0, gt=0)
    """Sampling temperature. 1.0 samples the policy itself, which is what the surrogate assumes."""
    top_p: float = Field(1.0, gt=0, le=1)
    """Nucleus sampling; 1.0 keeps the whole distribution."""
    max_completion_length: int = Field(256, ge=1)
    """Tokens a completion may have (the stop token included); longer ones are cut there."""
    epsilon: float = Field(0.2, gt=0)
    """Clip range of the probability ratio: ratios outside [1 - epsilon, 1 + epsilon] get no
    gradient in the direction that would move them further."""
    num_iterations: int = Field(1, ge=1)
    """Optimizer updates per batch of samples (GRPO's mu). 1 is on-policy: the ratio is exactly 1
    and clipping never acts; > 1 reuses the samples, with the sampling policy's log-probs frozen."""
    beta: float = Field(0.0, ge=0)
    """Weight of the KL penalty to the reference (the starting model), k3 estimator. 0 (the default,
    as in TRL, DAPO and Dr.GRPO) skips the reference model entirely: no second copy in memory."""
    loss_aggregation: Literal["dapo", "dr_grpo"] = "dapo"
    """Per-token aggregation. dapo: sum over every completion token of the batch / their number, so
    a long completion weighs as many tokens as it has. dr_grpo: the same sum / (completions x
    max_completion_length), a constant, so no length bias at all. (The original GRPO's per-sequence
    mean, which favours long wrong answers, is deliberately not offered.)"""
    scale_rewards: bool = True
    """Divide each group's centred rewards by the group's standard deviation (GRPO, TRL's default).
    False keeps only the mean baseline, as Dr.GRPO recommends (std scaling up-weights groups that
    are nearly all right or all wrong)."""
    rewards: dict[str, float] = {"correctness": 1.0, "format": 0.2}
    """Reward functions and their weights; the total reward is the weighted sum. Built in:
    correctness, format, length. Any other key is a user function by import path
    `module:function` with the signature `(prompts, completions, **columns) -> list[float]`
    (columns: answer, prompt_id, completion_lengths, stopped, max_completion_length; accept
    **kwargs), checked on a probe call before training starts."""
    length_buffer: float = Field(0.25, gt=0, le=1)
    """The `length` reward's soft zone, as a fraction of max_completion_length: no penalty below
    (1 - length_buffer) x max_completion_length, then linearly down to -1 at the limit (DAPO's
    overlong shaping)."""
    micro_batch_size: int | None = Field(None, ge=1)
    """Completions per forward and backward of the update. The step's batch_size x G completions go
    through in chunks of this many, their gradients accumulated, the loss normalised over the whole
    step: the same update (up to float rounding; with dropout, the same in distribution, since the
    masks are drawn per chunk) in the memory of one chunk. None: all at once.
    (This is GRPO's gradient accumulation; training.gradient_accumulation_steps is SFT's.)"""
    resample_zero_signal: int = Field(0, ge=0)
    """Extra sampling rounds for groups whose rewards are all equal (they carry no gradient): each
    round samples such groups again, and a group that gets a spread is used. 0 = off; zero-signal
    groups are counted in metrics either way."""
    adapter: Literal["continue", "new"] = "continue"
    """With a `lora:` section and a LoRA SFT run as model.model_id (its final_model/adapter/ exists):
    continue training that adapter on the base it was trained on (continue), or put fresh adapters
    on the run's merged final_model/ (new). Continuing is what passing an adapter run means; the KL
    reference (beta > 0) is then the SFT policy, a frozen copy of the starting adapter (docs/grpo.md)."""
    log_completions: bool = True
    """Append every logged step's completions (prompt id, text, each reward) to completions.jsonl."""

    @field_validator("rewards")
    @classmethod
    def _known_rewards(cls, rewards: dict[str, float]) -> dict[str, float]:
        if not rewards:
            raise ValueError("at least one reward function is needed")
        for name in rewards:
            if name not in BUILTIN_REWARDS and ":" not in name:
                raise ValueError(
                    f"{name!r} is neither a built-in reward ({', '.join(BUILTIN_REWARDS)}) nor an "
                    "import path module:function"
                )
        return rewards
