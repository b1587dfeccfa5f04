"""GRPO arithmetic on groups small enough to compute by hand."""

from __future__ import annotations

import math

import pytest
import torch

from tunix_rt.rl.loss import ADV_EPS, group_advantages, grpo_loss, zero_signal_groups


def test_group_advantages_by_hand() -> None:
    # Group 1: [1, 0, 0, 0] -> mean 0.25, centred [0.75, -0.25, -0.25, -0.25],
    # unbiased variance (0.5625 + 3 * 0.0625) / 3 = 0.25, std 0.5.
    # Group 2: all equal -> no signal, advantages 0.
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0])
    adv, zero = group_advantages(rewards, 4)
    expected = [0.75 / (0.5 + ADV_EPS)] + [-0.25 / (0.5 + ADV_EPS)] * 3 + [0.0] * 4
    assert adv.tolist() == pytest.approx(expected, abs=1e-6)
    assert zero == 1
    centred, _ = group_advantages(rewards, 4, scale=False)
    assert centred.tolist() == pytest.approx([0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0])


def test_zero_signal_groups_and_bad_layout() -> None:
    flags = zero_signal_groups(torch.tensor([1.0, 1.0, 0.0, 1.0, 0.5, 0.5]), 2)
    assert flags.tolist() == [True, False, True]
    with pytest.raises(ValueError, match="groups of 4"):
        group_advantages(torch.zeros(6), 4)


def _mask(lengths: list[int], width: int) -> torch.Tensor:
    mask = torch.zeros(len(lengths), width)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    return mask


def test_on_policy_loss_is_minus_mean_token_advantage() -> None:
    # Ratio 1 everywhere: per-token loss = -A. Row 0 (A=1) has 3 tokens, row 1 (A=-1) one token.
    logps = torch.log(torch.full((2, 4), 0.5)).requires_grad_(True)
    mask = _mask([3, 1], 4)
    adv = torch.tensor([1.0, -1.0])
    dapo = grpo_loss(logps, logps.detach(), adv, mask, epsilon=0.2)
    assert dapo.loss.item() == pytest.approx((-3 + 1) / 4)  # sum over 4 tokens / 4 tokens
    assert dapo.tokens == 4 and dapo.clip_fraction == 0.0 and dapo.kl is None
    dapo.loss.backward()
    # d(-ratio * A)/dlogp = -A at ratio 1, divided by the token count; padding gets nothing.
    assert logps.grad.flatten().tolist() == pytest.approx([-0.25, -0.25, -0.25, 0.0, 0.25, 0.0, 0.0, 0.0])
    dr = grpo_loss(
        logps, logps.detach(), adv, mask, epsilon=0.2, aggregation="dr_grpo", max_completion_length=4
    )
    assert dr.loss.item() == pytest.approx(-2 / (2 * 4))  # the same sum / (completions x max length)


def test_clipping_by_hand() -> None:
    # Both rows have ratio 1.5 on their single token, epsilon 0.2.
    old = torch.log(torch.tensor([[0.4], [0.4]]))
    new = torch.log(torch.tensor([[0.6], [0.6]])).requires_grad_(True)
    adv = torch.tensor([1.0, -1.0])
    parts = grpo_loss(new, old, adv, torch.ones(2, 1), epsilon=0.2)
    # A=+1: -min(1.5, 1.2) = -1.2 (clipped, no gradient); A=-1: -min(-1.5, -1.2) = 1.5 (not clipped).
    assert parts.loss.item() == pytest.approx((-1.2 + 1.5) / 2)
    assert parts.clip_fraction == pytest.approx(0.5)
    parts.loss.backward()
    assert new.grad[0, 0].item() == 0.0
    assert new.grad[1, 0].item() == pytest.approx(1.5 / 2)  # d(ratio)/dlogp = ratio, /2 tokens


def test_k3_kl_by_hand_and_beta_zero_needs_no_reference() -> None:
    logps = torch.log(torch.tensor([[0.5]]))
    ref = torch.log(torch.tensor([[0.25]]))
    parts = grpo_loss(
        logps, logps, torch.tensor([0.0]), torch.ones(1, 1), epsilon=0.2, beta=0.1, ref_logps=ref
    )
    k3 = 0.5 - math.log(0.5) - 1  # exp(d) - d - 1 with d = log(0.25 / 0.5)
    assert parts.kl == pytest.approx(k3)
    assert parts.loss.item() == pytest.approx(0.1 * k3)
    with pytest.raises(ValueError, match="reference"):
        grpo_loss(logps, logps, torch.tensor([0.0]), torch.ones(1, 1), epsilon=0.2, beta=0.1)
