"""rl/step.policy_update: an update split into micro-batches (grpo.micro_batch_size) is the same
update, in weights and in every reported figure, as the whole batch at once."""

from __future__ import annotations

import copy

import pytest
import torch

from helpers_models import make_tiny_model, make_tokenizer
from tunix_rt.eval.generate import Generation
from tunix_rt.rl.config import GrpoConfig
from tunix_rt.rl.reference import Reference
from tunix_rt.rl.sampling import Samples
from tunix_rt.rl.step import Scored, policy_update


def _scored() -> Scored:
    """Two groups of G=4 with different prompt and completion lengths and a spread of rewards."""
    prompts = [[5, 6, 7]] * 4 + [[8, 9, 10, 11, 12]] * 4
    completions = [[20, 21], [22, 23, 24, 25, 26], [27], [28, 29, 30], [31, 32, 33, 34], [35], [36, 37], [38]]
    generations = [Generation("", len(c), True, tuple(c)) for c in completions]
    totals = [1.0, 0.0, 0.2, 1.0, 0.0, 0.0, 1.2, 1.0]
    return Scored(Samples(prompts, generations), {"correctness": totals}, totals, [t >= 1 for t in totals], 4)


def _update(model, micro_batch_size: int | None, aggregation: str, packed: bool):
    torch.manual_seed(0)
    gcfg = GrpoConfig(
        num_generations=4, num_iterations=2, beta=0.1, epsilon=0.05, max_completion_length=6,
        loss_aggregation=aggregation, micro_batch_size=micro_batch_size,
    )  # fmt: skip
    reference = Reference.frozen_copy(copy.deepcopy(model))
    # The reference must differ from the policy for the KL term to carry a gradient.
    with torch.no_grad():
        for p in reference.model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    parts, grad_norm = policy_update(
        model, reference, optimizer, scheduler, _scored(), gcfg, 1e9, 0, torch.device("cpu"), None, packed
    )
    return parts, grad_norm, {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize(("aggregation", "packed"), [("dapo", False), ("dr_grpo", False), ("dapo", True)])
def test_micro_batches_give_the_whole_batch_update(aggregation: str, packed: bool) -> None:
    tokenizer = make_tokenizer()
    start = make_tiny_model("llama", tokenizer).eval()  # no dropout: the forwards are deterministic
    whole = _update(copy.deepcopy(start), None, aggregation, packed)
    for size in (3, 1):  # uneven chunks (3, 3, 2), and one completion at a time
        split = _update(copy.deepcopy(start), size, aggregation, packed)
        (w_parts, w_norm, w_weights), (s_parts, s_norm, s_weights) = whole, split
        assert s_parts.tokens == w_parts.tokens == 19
        assert float(s_parts.loss) == pytest.approx(float(w_parts.loss), abs=1e-6)
        assert s_parts.kl == pytest.approx(w_parts.kl, rel=1e-5) and w_parts.kl > 0
        assert s_parts.clip_fraction == pytest.approx(w_parts.clip_fraction, abs=1e-6)
        assert s_norm == pytest.approx(w_norm, rel=1e-5)
        moved = sum(float((w_weights[n] - p.detach()).abs().sum()) for n, p in start.named_parameters())
        assert moved > 0
        for name, weight in w_weights.items():
            torch.testing.assert_close(s_weights[name], weight, atol=1e-6, rtol=1e-5, msg=name)
