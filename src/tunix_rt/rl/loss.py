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
  (completions x max_completion_length).
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
) -> LossParts:
    """Clipped surrogate (+ beta x k3 KL) over completion tokens; tensors [B, T], advantages [B]."""
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
    total = (per_token * mask).sum()
    if aggregation == "dapo":
        loss = total / mask.sum().clamp(min=1)
    elif aggregation == "dr_grpo":
        if max_completion_length is None:
            raise ValueError("dr_grpo aggregation needs max_completion_length")
        loss = total / (logps.shape[0] * max_completion_length)
    else:
        raise ValueError(f"unknown loss aggregation {aggregation!r}")
    # As TRL: a token counts as clipped when the clip removed its gradient (ratio beyond the
    # range in the direction the advantage pushes).
    with torch.no_grad():
        low = (ratio < 1 - epsilon) & (adv < 0)
        high = (ratio > 1 + epsilon) & (adv > 0)
        clip_fraction = float(((low | high).to(mask.dtype) * mask).sum() / mask.sum().clamp(min=1))
    return LossParts(loss=loss, kl=kl_value, clip_fraction=clip_fraction, tokens=int(mask.sum()))
