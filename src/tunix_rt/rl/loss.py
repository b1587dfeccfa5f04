"""GRPO's arithmetic: group-normalised advantages, per-token log-probs, clipped surrogate, k3 KL.

Follows TRL's GRPOTrainer (trl/trainer/grpo_trainer.py: `_generate_and_score_completions` for the
advantages, `_compute_loss` for the loss), which follows DeepSeekMath's GRPO (arXiv 2402.03300),
DAPO (arXiv 2503.14476) and Dr.GRPO (arXiv 2503.20783):

* advantage of completion i in its group: A_i = r_i - mean(r_group), divided by
  (std(r_group) + eps) when scale_rewards is on. std is torch's default unbiased (n - 1) standard
  deviation, as TRL computes it; eps = 1e-4 as TRL. A group whose rewards are all equal has
  A = 0 for every completion: it carries no signal and is counted as such.
* ratio_t = exp(logp_t - old_logp_t), where old_logp comes from the policy that sampled (detached);
  per-token loss = -min(ratio_t * A, clip(ratio_t, 1 - epsilon, 1 + epsilon) * A).
* KL to the reference when beta > 0, the k3 estimator (Schulman, "Approximating KL divergence"):
  kl_t = exp(ref_t - logp_t) - (ref_t - logp_t) - 1 >= 0, added as beta * kl_t per token.
* aggregation per token: dapo = sum(loss_t * mask) / sum(mask); dr_grpo = sum(loss_t * mask) /
  (completions x max_completion_length). Over micro-batches (grpo.micro_batch_size) each one's sum
  is divided by the whole step's denominator, so their gradients add up to the step's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

ADV_EPS = 1e-4


def group_advantages(
    rewards: torch.Tensor, group_size: int, *, scale: bool = True
) -> tuple[torch.Tensor, int]:
    """(advantages, number of zero-signal groups) for rewards laid out as consecutive groups."""
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    grouped = rewards.view(-1, group_size).float()
    mean = grouped.mean(dim=1, keepdim=True)
    centred = grouped - mean
    zero_signal = zero_signal_groups(grouped, group_size)
    if scale:
        centred = centred / (grouped.std(dim=1, keepdim=True) + ADV_EPS)
    return centred.flatten(), int(zero_signal.sum())


def zero_signal_groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """A bool per group: True when every reward in it is equal."""
    grouped = rewards.view(-1, group_size)
    return grouped.max(dim=1).values == grouped.min(dim=1).values


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target_t) under logits_t, in float32 (logits [B, T, V], targets [B, T])."""
    logp = F.log_softmax(logits.float(), dim=-1)
    return logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


@dataclass
class LossParts:
    loss: torch.Tensor  # the scalar to backpropagate
    kl: float | None  # mean per-token KL to the reference (None when beta == 0)
    clip_fraction: float  # fraction of completion tokens whose ratio was clipped against A
    tokens: int  # completion tokens in the batch


def grpo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    epsilon: float,
    beta: float = 0.0,
    ref_logps: torch.Tensor | None = None,
    aggregation: str = "dapo",
    max_completion_length: int | None = None,
    denominator: float | None = None,
) -> LossParts:
    """Clipped surrogate (+ beta x k3 KL) over completion tokens; tensors [B, T], advantages [B].

    denominator: what the token sum is divided by (`loss_denominator` of the whole step), given when
    this batch is one micro-batch of a step, so the micro-batches' losses add up to the step's.
    None: this batch's own (its completion tokens for dapo, B x max_completion_length for dr_grpo).
    """
    mask = mask.to(logps.dtype)
    ratio = torch.exp(logps - old_logps)
    adv = advantages.unsqueeze(1)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + epsilon) * adv
    per_token = -torch.min(unclipped, clipped)
    kl_value = None
    if beta > 0:
        if ref_logps is None:
            raise ValueError("beta > 0 needs the reference model's log-probs")
        delta = ref_logps - logps
        kl = torch.exp(delta) - delta - 1
        per_token = per_token + beta * kl
        kl_value = float((kl.detach() * mask).sum() / mask.sum().clamp(min=1))
    if denominator is None:
        denominator = loss_denominator(int(mask.sum()), logps.shape[0], aggregation, max_completion_length)
    loss = (per_token * mask).sum() / denominator
    # As TRL: a token counts as clipped when the clip removed its gradient (ratio beyond the
    # range in the direction the advantage pushes).
    with torch.no_grad():
        low = (ratio < 1 - epsilon) & (adv < 0)
        high = (ratio > 1 + epsilon) & (adv > 0)
        clip_fraction = float(((low | high).to(mask.dtype) * mask).sum() / mask.sum().clamp(min=1))
    return LossParts(loss=loss, kl=kl_value, clip_fraction=clip_fraction, tokens=int(mask.sum()))


def loss_denominator(
    tokens: int, completions: int, aggregation: str, max_completion_length: int | None = None
) -> float:
    """What a batch's summed per-token loss is divided by: dapo, its completion tokens (at least 1);
    dr_grpo, completions x max_completion_length (a constant: no length bias)."""
    if aggregation == "dapo":
        return float(max(tokens, 1))
    if aggregation == "dr_grpo":
        if max_completion_length is None:
            raise ValueError("dr_grpo aggregation needs max_completion_length")
        return float(completions * max_completion_length)
    raise ValueError(f"unknown loss aggregation {aggregation!r}")


def combined(parts: list[LossParts]) -> LossParts:
    """The step's LossParts from its micro-batches' (each normalised by the step's denominator):
    losses added, KL and clip fraction averaged over tokens, tokens counted."""
    tokens = sum(part.tokens for part in parts)
    weight = max(tokens, 1)
    with_kl = parts[0].kl is not None  # beta > 0: every micro-batch has one
    return LossParts(
        loss=torch.stack([part.loss.detach() for part in parts]).sum(),
        kl=sum((part.kl or 0.0) * part.tokens for part in parts) / weight if with_kl else None,
        clip_fraction=sum(part.clip_fraction * part.tokens for part in parts) / weight,
        tokens=tokens,
    )
