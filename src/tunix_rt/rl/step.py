"""The arithmetic of one GRPO step that the recipe's loop calls: sample and score a step's groups,
then the clipped-surrogate updates on them. Kept free of bookkeeping (that is rl/record.py), as
train/step.py is for SFT; plus the memory probe at the largest batch, run before step 1."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from tunix_rt.errors import ConfigError, TrainingError
from tunix_rt.eval.score import score
from tunix_rt.rl.config import GrpoConfig
from tunix_rt.rl.data import PromptItem
from tunix_rt.rl.loss import (
    LossParts,
    combined,
    group_advantages,
    grpo_loss,
    loss_denominator,
    zero_signal_groups,
)
from tunix_rt.rl.reference import Reference
from tunix_rt.rl.rewards import Reward, score_completions
from tunix_rt.rl.sampling import (
    Samples,
    batch_from_samples,
    eval_logprobs,
    generation_weights,
    probe_longest_batch,
    sample_groups,
    sequence_logprobs,
)
from tunix_rt.train.step import clip_grad_norm


@dataclass
class Scored:
    """A step's samples with their rewards, laid out group by group (rows k*G .. k*G+G-1)."""

    samples: Samples
    per_fn: dict[str, list[float]]
    totals: list[float]
    correct: list[bool]
    group_size: int
    resampled_groups: int = 0
    zero_signal_sampled: int = 0  # groups without signal as first sampled, before any resampling


def sample_and_score(
    model: Any,
    tokenizer: Any,
    items: list[PromptItem],
    texts: list[str],
    rewards: list[Reward],
    gcfg: GrpoConfig,
    device: torch.device,
    sampler: torch.Generator,
    compute_dtype: torch.dtype | None = None,
) -> Scored:
    """All prompts x G in one generate() call; then up to resample_zero_signal rounds for groups
    whose rewards are all equal, keeping a round's group when it has a spread.

    compute_dtype: the autocast dtype the update runs in; sampling runs in it too (None: float32)."""

    def sample(sub_texts: list[str]) -> Samples:
        return sample_groups(
            model, tokenizer, sub_texts, num_generations=gcfg.num_generations,
            max_completion_length=gcfg.max_completion_length, temperature=gcfg.temperature,
            top_p=gcfg.top_p, device=device, generator=sampler, compute_dtype=compute_dtype,
        )  # fmt: skip

    with generation_weights(model):  # a LoRA policy may generate merged (rl/sampling.py)
        scored = _score(sample(texts), items, texts, rewards, gcfg)
        g = gcfg.num_generations
        scored.zero_signal_sampled = int(zero_signal_groups(torch.tensor(scored.totals), g).sum())
        for _ in range(gcfg.resample_zero_signal):
            flat = zero_signal_groups(torch.tensor(scored.totals), g).nonzero().flatten().tolist()
            if not flat:
                break
            again = _score(
                sample([texts[k] for k in flat]),
                [items[k] for k in flat],
                [texts[k] for k in flat],
                rewards,
                gcfg,
            )
            for j, k in enumerate(flat):
                rows = slice(j * g, (j + 1) * g)
                if len(set(again.totals[rows])) > 1:
                    _replace_group(scored, again, k * g, rows)
                    scored.resampled_groups += 1
    return scored


def _score(
    samples: Samples, items: list[PromptItem], texts: list[str], rewards: list[Reward], gcfg: GrpoConfig
) -> Scored:
    g = gcfg.num_generations
    answers = [item.answer for item in items for _ in range(g)]
    columns = {
        "answer": answers,
        "prompt_id": [item.id for item in items for _ in range(g)],
        "completion_lengths": samples.lengths,
        "stopped": samples.stopped,
        "max_completion_length": gcfg.max_completion_length,
    }
    prompts = [text for text in texts for _ in range(g)]
    per_fn, totals = score_completions(rewards, prompts, samples.texts, columns)
    correct = [score(text, gold).correct for text, gold in zip(samples.texts, answers, strict=True)]
    return Scored(samples, per_fn, totals, correct, group_size=g)


def _replace_group(scored: Scored, again: Scored, start: int, rows: slice) -> None:
    n = rows.stop - rows.start
    scored.samples.generations[start : start + n] = again.samples.generations[rows]
    scored.samples.prompt_ids[start : start + n] = again.samples.prompt_ids[rows]
    scored.totals[start : start + n] = again.totals[rows]
    scored.correct[start : start + n] = again.correct[rows]
    for name in scored.per_fn:
        scored.per_fn[name][start : start + n] = again.per_fn[name][rows]


def policy_update(
    model: Any,
    reference: Reference | None,
    optimizer: Any,
    scheduler: Any,
    scored: Scored,
    gcfg: GrpoConfig,
    max_grad_norm: float | None,
    pad_id: int,
    device: torch.device,
    compute_dtype: torch.dtype | None = None,
    packed: bool = False,
) -> tuple[LossParts, float]:
    """num_iterations clipped-surrogate updates on one batch of samples; (last loss parts, grad norm).

    Old log-probs: with one iteration the current ones, detached (ratio 1, as TRL does); with more,
    computed once before the first update, so later iterations are measured against the policy
    that sampled. The reference's log-probs are computed once too (rl/reference.py).
    compute_dtype: the autocast dtype (dtype auto: bf16 where native); None runs float32.
    packed: forwards run on packed rows (rl/sampling.pack_sequences; the recipe checks the model first).
    grpo.micro_batch_size: the rows go through in chunks, gradients accumulated; each chunk's token
    sum is divided by the whole step's denominator, so the update is the unchunked one.
    """
    advantages, _ = group_advantages(
        torch.tensor(scored.totals), gcfg.num_generations, scale=gcfg.scale_rewards
    )
    size = gcfg.micro_batch_size or len(scored.totals)
    chunks = [
        (batch_from_samples(part, pad_id, device, packed), advantages[start : start + size].to(device))
        for start, part in _row_chunks(scored.samples, size)
    ]
    tokens = sum(int(batch.mask.sum()) for batch, _ in chunks)
    denominator = loss_denominator(
        tokens, len(scored.totals), gcfg.loss_aggregation, gcfg.max_completion_length
    )
    with torch.no_grad():
        olds = (
            [eval_logprobs(model, batch, compute_dtype) for batch, _ in chunks]
            if gcfg.num_iterations > 1
            else None
        )
    refs = (
        [reference.logprobs(batch, compute_dtype) for batch, _ in chunks] if reference is not None else None
    )
    parts: list[LossParts] = []
    grad_norm = 0.0
    for _ in range(gcfg.num_iterations):
        optimizer.zero_grad(set_to_none=True)
        parts = []
        for i, (batch, chunk_advantages) in enumerate(chunks):
            logps = sequence_logprobs(model, batch, compute_dtype)
            part = grpo_loss(
                logps, olds[i] if olds is not None else logps.detach(), chunk_advantages, batch.mask,
                epsilon=gcfg.epsilon, beta=gcfg.beta, ref_logps=refs[i] if refs is not None else None,
                denominator=denominator,
            )  # fmt: skip
            part.loss.backward()
            parts.append(part)
        grad_norm = float(clip_grad_norm(model, max_grad_norm))
        if not math.isfinite(grad_norm):
            raise TrainingError(f"non-finite gradient norm ({grad_norm}); lower training.learning_rate")
        optimizer.step()
    scheduler.step()
    return combined(parts), grad_norm


def _row_chunks(samples: Samples, size: int) -> list[tuple[int, Samples]]:
    """(first row, the rows from there) in chunks of size rows, in order."""
    return [
        (start, Samples(samples.prompt_ids[start : start + size], samples.generations[start : start + size]))
        for start in range(0, len(samples.generations), size)
    ]


def probe_memory(
    model: Any,
    pad_id: int,
    rows: int,
    longest_prompt: int,
    gcfg: GrpoConfig,
    device: torch.device,
    compute_dtype: torch.dtype | None = None,
) -> str:
    """The largest batch first: positions the model cannot hold, or memory it lacks, fail now."""
    length = longest_prompt + gcfg.max_completion_length
    limit = max_positions(model.config)
    if limit is not None and length > limit:
        raise ConfigError(
            f"grpo.max_completion_length: the longest prompt ({longest_prompt} tokens) + "
            f"{gcfg.max_completion_length} completion tokens = {length} exceeds the model's {limit} positions"
        )
    try:
        probe_longest_batch(model, rows, length, pad_id, device, compute_dtype)
    except torch.OutOfMemoryError as exc:
        raise TrainingError(
            f"out of memory at the largest batch this run reaches ({rows} rows x {length} tokens); lower "
            "training.batch_size, grpo.num_generations or grpo.max_completion_length"
        ) from exc
    return f"memory probe: {rows} rows x {length} tokens fit"


def max_positions(config: Any) -> int | None:
    """The model config's position limit (None when it has none, e.g. rotary without a cap)."""
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None
