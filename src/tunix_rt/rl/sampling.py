"""Sampling a step's groups and turning them into a batch the policy can score.

All prompts x G completions of a step are generated together by the batched KV-cache generator
that evaluation uses (`eval.generate.generate`, left padding, per-sequence stop on EOS /
end-of-turn), drawing from a `torch.Generator` the checkpoint saves, so a resumed run samples
exactly what an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tunix_rt.eval.generate import Generation, generate
from tunix_rt.rl.loss import token_logprobs
from tunix_rt.train.lm_loss import head_only_at
from tunix_rt.train.lora import adapters_merged, is_peft_model
from tunix_rt.train.model import cast_as_loading_does
from tunix_rt.train.runtime import autocast
from tunix_rt.train.step import head_only_loss


@dataclass
class Samples:
    """Completions laid out group by group: rows k*G .. k*G+G-1 answer prompt k."""

    prompt_ids: list[list[int]]  # per row (each prompt repeated G times)
    generations: list[Generation]

    @property
    def texts(self) -> list[str]:
        return [g.text for g in self.generations]

    @property
    def lengths(self) -> list[int]:
        return [g.n_tokens for g in self.generations]

    @property
    def stopped(self) -> list[bool]:
        return [g.stopped_at_eos for g in self.generations]


def generation_weights(model: Any) -> contextlib.AbstractContextManager[None]:
    """The weights a step generates with. A LoRA policy on a float32 base: adapters merged for the
    call (train/lora.adapters_merged; faster on CPU, docs/grpo.md) and restored exactly after. On a
    bf16 base: unmerged, since merging would round a small adapter update away and the samples
    would not come from the policy being trained. A plain model: as it is."""
    if is_peft_model(model) and model.get_base_model().dtype == torch.float32:
        return adapters_merged(model)
    return contextlib.nullcontext()


def sampling_copy(model: Any, compute_dtype: torch.dtype | None) -> Any | None:
    """Full fine-tuning in bf16 on a CPU: a bf16 copy of the policy for sampling, kept for the run and
    refreshed from the float32 weights before each step's generation (`refreshed`); None otherwise.

    Why: at the small batch sizes of decoding, autocast's per-op dispatch and activation casts cost
    more than the matmuls on a CPU; generating from bf16 weights is faster (benchmarks/
    grpo_throughput.py, docs/performance.md). The price: normalisation and softmax run in bf16 while
    the update's forward runs them in float32 under autocast, so samples come from a policy a
    rounding away from the one being differentiated, as with any separate inference engine (vLLM).
    The log-probs of the loss are always the update's own. Not used with LoRA (the frozen base is
    already bf16), in float32, or on a GPU (not measured there; it would cost half the model's memory)."""
    first = next(model.parameters())
    if is_peft_model(model) or compute_dtype is None or first.device.type != "cpu":
        return None
    twin = cast_as_loading_does(copy.deepcopy(model), compute_dtype)
    return twin.requires_grad_(False).eval()


def refreshed(twin: Any, model: Any) -> Any:
    """The sampling copy with the policy's current weights (cast on copy)."""
    with torch.no_grad():
        for target, source in zip(twin.parameters(), model.parameters(), strict=True):
            target.copy_(source)
    return twin


def sample_groups(
    model: Any,
    tokenizer: Any,
    prompt_texts: list[str],
    *,
    num_generations: int,
    max_completion_length: int,
    temperature: float,
    top_p: float,
    device: torch.device,
    generator: torch.Generator,
    compute_dtype: torch.dtype | None = None,
) -> Samples:
    """G sampled completions per rendered prompt, every row of the step in one generate() call.

    compute_dtype: sample under the autocast the update runs in (the policy's forward is the same
    function in both), None for float32. One autocast region around the whole call: autocast caches
    each weight's bf16 cast for the region, so weights are cast once per step, not once per token
    (benchmarks/grpo_throughput.py, 2-core EPYC: 1,030 generated tokens/s against 719 in float32)."""
    from tunix_rt.train.tokenize import encode_prompt

    rows = [text for text in prompt_texts for _ in range(num_generations)]
    with autocast(torch.device(device).type, compute_dtype):
        generations = generate(
            model,
            tokenizer,
            rows,
            max_new_tokens=max_completion_length,
            batch_size=len(rows),
            device=device,
            temperature=temperature,
            top_p=top_p,
            generator=generator,
        )
    return Samples(prompt_ids=[encode_prompt(tokenizer, text) for text in rows], generations=generations)


@dataclass
class UpdateBatch:
    """Prompt + completion rows, right-padded; `mask` marks the completion tokens in `targets`."""

    input_ids: torch.Tensor  # [B, L]
    attention_mask: torch.Tensor  # [B, L]
    targets: torch.Tensor  # [B, L - 1]: input_ids shifted left
    mask: torch.Tensor  # [B, L - 1]: 1 where the target is a completion token
    packed: PackedRows | None = None  # the same sequences packed, what the forward runs on


@dataclass
class PackedRows:
    """The batch's sequences packed into shared rows (train/batching.packed_rows, as SFT packs), each
    with position ids restarting at 0, so the model keeps them apart (train/packing.py checks that
    on the model first). The forward runs on these rows; its completion log-probs go back to the
    [B, L - 1] layout through `dest`."""

    input_ids: torch.Tensor  # [R, W]
    position_ids: torch.Tensor  # [R, W]
    keep: torch.Tensor  # [R, W - 1] bool: position t predicts a completion token at t + 1
    targets: torch.Tensor  # [N]: those completion tokens, in row-major order of keep
    dest: torch.Tensor  # [N]: where each goes in the flattened [B, L - 1] layout


def update_batch(prompt_ids: list[list[int]], completion_ids: list[list[int]], pad_id: int) -> UpdateBatch:
    rows = [p + c for p, c in zip(prompt_ids, completion_ids, strict=True)]
    width = max(2, max(len(r) for r in rows))
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width - 1), dtype=torch.float32)
    for i, (row, p, c) in enumerate(zip(rows, prompt_ids, completion_ids, strict=True)):
        input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention[i, : len(row)] = 1
        # logits at position t predict token t + 1: completion tokens p..p+c-1 are targets p-1..p+c-2.
        mask[i, len(p) - 1 : len(p) - 1 + len(c)] = 1.0
    return UpdateBatch(input_ids, attention, input_ids[:, 1:], mask)


def pack_sequences(
    prompt_ids: list[list[int]], completion_ids: list[list[int]], pad_id: int, width_of_batch: int
) -> PackedRows:
    """The sequences prompt + completion packed into the fewest rows (padding has position 0, a
    sequence of its own); dest maps each completion target to the padded layout of update_batch."""
    from tunix_rt.train.batching import packed_rows

    rows = [p + c for p, c in zip(prompt_ids, completion_ids, strict=True)]
    width, layout = packed_rows(np.array([len(r) for r in rows]))
    input_ids = torch.full((len(layout), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(layout), width), dtype=torch.long)
    keep = torch.zeros((len(layout), width - 1), dtype=torch.bool)
    dest: list[int] = []
    for r, members in enumerate(layout):
        start = 0
        for i in members:
            n, p = len(rows[i]), len(prompt_ids[i])
            input_ids[r, start : start + n] = torch.tensor(rows[i], dtype=torch.long)
            positions[r, start : start + n] = torch.arange(n)
            keep[r, start + p - 1 : start + n - 1] = True  # as update_batch's mask, shifted by start
            dest += range(i * (width_of_batch - 1) + p - 1, i * (width_of_batch - 1) + n - 1)
            start += n
    targets = input_ids[:, 1:][keep]
    return PackedRows(input_ids, positions, keep, targets, torch.tensor(dest, dtype=torch.long))


def batch_from_samples(
    samples: Samples, pad_id: int, device: torch.device, packed: bool = False
) -> UpdateBatch:
    """The update batch of a step's samples; packed: the forward runs on packed rows (fewer padded
    positions: completions of 5 and 96 tokens share a step), giving the same log-probs."""
    completions = [list(g.token_ids) for g in samples.generations]
    batch = update_batch(samples.prompt_ids, completions, pad_id)
    rows = (
        pack_sequences(samples.prompt_ids, completions, pad_id, batch.input_ids.shape[1]) if packed else None
    )
    return UpdateBatch(
        *(t.to(device) for t in (batch.input_ids, batch.attention_mask, batch.targets, batch.mask)),
        packed=PackedRows(*(t.to(device) for t in vars(rows).values())) if rows is not None else None,
    )


def sequence_logprobs(
    model: Any, batch: UpdateBatch, compute_dtype: torch.dtype | None = None
) -> torch.Tensor:
    """log p(target) [B, L - 1] in float32 at the completion positions (batch.mask), 0 elsewhere.

    The LM head and the log-softmax run at completion positions only (train/lm_loss.head_only_at,
    as SFT's completion loss): prompt positions carry no loss, and a step's full-vocabulary logits
    are its largest activation (64 rows x 200 positions x SmolLM2's 49k vocabulary: 2.5 GB in
    float32). Models the head-only path cannot serve (train/step.head_only_loss) get full logits.
    compute_dtype: the autocast dtype (dtype auto: bf16 where native), None for float32.
    """
    if batch.packed is not None:
        return _packed_logprobs(model, batch, compute_dtype)
    keep = batch.mask.bool()
    head_only = head_only_loss(model)
    with (
        autocast(batch.input_ids.device.type, compute_dtype),
        head_only_at(model, keep) if head_only else contextlib.nullcontext(),
    ):
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False).logits
    if not head_only:
        return token_logprobs(logits[:, :-1], batch.targets) * batch.mask
    picked = token_logprobs(logits, batch.targets[keep])
    return torch.zeros(keep.shape, dtype=picked.dtype, device=picked.device).masked_scatter(keep, picked)


def _packed_logprobs(model: Any, batch: UpdateBatch, compute_dtype: torch.dtype | None) -> torch.Tensor:
    """sequence_logprobs on the packed rows (no attention mask: the restarting position ids give
    transformers its block-diagonal causal mask), scattered back to [B, L - 1]."""
    rows = batch.packed
    assert rows is not None
    with (
        autocast(rows.input_ids.device.type, compute_dtype),
        head_only_at(model, rows.keep),
    ):
        logits = model(input_ids=rows.input_ids, position_ids=rows.position_ids, use_cache=False).logits
    picked = token_logprobs(logits, rows.targets)
    flat = torch.zeros(batch.mask.numel(), dtype=picked.dtype, device=picked.device)
    return flat.index_copy(0, rows.dest, picked).view(batch.mask.shape)


def eval_logprobs(model: Any, batch: UpdateBatch, compute_dtype: torch.dtype | None = None) -> torch.Tensor:
    """sequence_logprobs without dropout (the policy as it sampled, or the frozen reference)."""
    was_training = model.training
    model.eval()
    try:
        return sequence_logprobs(model, batch, compute_dtype)
    finally:
        model.train(was_training)


def probe_longest_batch(
    model: Any,
    rows: int,
    length: int,
    pad_id: int,
    device: torch.device,
    compute_dtype: torch.dtype | None = None,
) -> None:
    """One forward + backward at the largest shape the run can reach (every row at max prompt +
    max_completion_length), so an out-of-memory error comes before step 1, not hours later.

    Runs in eval mode (no dropout draws) with the global RNG forked, and its gradients are dropped:
    the run continues exactly as if the probe had not happened.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]):
            ids = torch.full((rows, length), pad_id, dtype=torch.long, device=device)
            batch = UpdateBatch(
                ids, torch.ones_like(ids), ids[:, 1:], torch.ones(rows, length - 1, device=device)
            )
            sequence_logprobs(model, batch, compute_dtype).sum().backward()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
