"""Batched greedy decoding: left padding, KV cache, stop at EOS or end-of-turn, deterministic.

Prompts are encoded exactly as training encodes them (`encode_prompt`), sorted by length so each
batch carries little padding, left-padded (so every row's next token sits in the last column) and
decoded greedily by `model.generate` with the KV cache. Hugging Face derives position ids from the
attention mask for left-padded rows, so a batched row yields the same tokens as the prompt alone;
tests/test_eval_generate.py checks that on a tiny GPT-2 and a tiny Llama. With a temperature
(GRPO's sampling) each row's token is drawn by `InverseCdfSampler` from the given generator.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tunix_rt.train.render import end_of_turn_id  # the token training completions end with
from tunix_rt.train.tokenize import encode_prompt  # one encoding for training and evaluation


@dataclass(frozen=True)
class Generation:
    text: str  # decoded completion, special tokens removed, stop token excluded
    n_tokens: int  # generated tokens, including the stop token when there was one
    stopped_at_eos: bool
    token_ids: tuple[int, ...] = ()  # the generated ids, stop token included (len == n_tokens)


def stop_token_ids(tokenizer: Any, model: Any = None) -> list[int]:
    """The tokenizer's EOS, its chat template's end-of-turn token (the id a chat model's training
    completions end with, e.g. <end_of_turn>, <|im_end|>) and any EOS ids of the model's
    generation config, so chat models stop at the end of their turn."""
    ids: list[int] = []
    candidates: list[Any] = [tokenizer.eos_token_id, end_of_turn_id(tokenizer)]
    gen_config = getattr(model, "generation_config", None)
    if gen_config is not None:
        candidates.append(gen_config.eos_token_id)
    for value in candidates:
        for token_id in value if isinstance(value, (list, tuple)) else [value]:
            if token_id is not None and int(token_id) not in ids:
                ids.append(int(token_id))
    return ids


def _pad_id(tokenizer: Any, stops: Sequence[int]) -> int:
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    if stops:
        return int(stops[0])  # padding is masked out, any id will do; EOS is the usual choice
    return 0


def _trim(ids: Iterable[int], stops: set[int]) -> tuple[list[int], bool]:
    """Tokens up to the first stop id (excluded) and whether a stop id was seen."""
    kept: list[int] = []
    for token_id in ids:
        if token_id in stops:
            return kept, True
        kept.append(token_id)
    return kept, False


def _left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            input_ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            attention[i, width - len(row) :] = 1
    return input_ids, attention


@torch.inference_mode()
def generate(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    *,
    max_new_tokens: int,
    batch_size: int,
    device: str | torch.device,
    stop_ids: Sequence[int] | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> list[Generation]:
    """Greedy completions for prompts, in the order given; sampled ones when temperature is set.

    stop_ids overrides the stop tokens (default: `stop_token_ids(tokenizer, model)`).
    temperature / top_p: sample instead of decoding greedily (None keeps greedy decoding).
    generator: the RNG that sampling draws from, so a run (and its resume) samples the same
    sequences; the global torch RNG is left untouched (see `_sampling_rng`).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be >= 1")
    stops = list(stop_ids) if stop_ids is not None else stop_token_ids(tokenizer, model)
    pad_id = _pad_id(tokenizer, stops)
    encoded = [encode_prompt(tokenizer, prompt) for prompt in prompts]
    # Longest first: similar lengths share a batch, and an out-of-memory shows up at once.
    order = sorted(range(len(encoded)), key=lambda i: (-len(encoded[i]), i))
    results: list[Generation | None] = [None] * len(encoded)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            input_ids, attention = _left_pad([encoded[i] for i in chunk], pad_id)
            decoding, sampler = _decoding(temperature, top_p, generator)
            arguments = {**decoding, "pad_token_id": pad_id, "eos_token_id": stops or None, "use_cache": True}
            if sampler is None or _own_cache_implementation(model):
                output = model.generate(
                    input_ids=input_ids.to(device), attention_mask=attention.to(device),
                    max_new_tokens=max_new_tokens, **arguments,
                )  # fmt: skip
                new_tokens = output[:, input_ids.shape[1] :].tolist()
            else:
                new_tokens = _sample_dropping_stopped_rows(
                    model, input_ids.to(device), attention.to(device), max_new_tokens, arguments, sampler,
                    set(stops),
                )  # fmt: skip
            for row, index in zip(new_tokens, chunk, strict=True):
                kept, stopped = _trim(row, set(stops))
                n_tokens = len(kept) + (1 if stopped else 0)
                results[index] = Generation(
                    text=tokenizer.decode(kept, skip_special_tokens=True),
                    n_tokens=n_tokens,
                    stopped_at_eos=stopped,
                    token_ids=tuple(row[:n_tokens]),
                )
    finally:
        model.train(was_training)
    return [r for r in results if r is not None]


SAMPLING_SEGMENT = 16  # tokens sampled between two checks for rows that have stopped


def _sample_dropping_stopped_rows(
    model: Any,
    input_ids: torch.Tensor,
    attention: torch.Tensor,
    max_new_tokens: int,
    arguments: dict[str, Any],
    sampler: InverseCdfSampler,
    stops: set[int],
) -> list[list[int]]:
    """Each row's sampled tokens: model.generate in segments of SAMPLING_SEGMENT tokens, continuing
    from its KV cache, and after each segment the rows that have stopped leave the batch and the
    cache (Cache.batch_select_indices).

    Why: one generate() call decodes every row until the longest one stops. GRPO's completions are
    mostly short with a long tail (benchmarks/grpo_throughput.py: mean 23, up to 96 tokens), so most
    of the batch's decode steps would run rows that have already finished. A step costs less with
    fewer rows (2-core AMD EPYC, bf16: SmolLM2-135M 128 ms at 64 rows, 60 at 16; the 10M GPT-2 of the
    benchmark 23 and 13 ms). Only sampling does this: greedy evaluation keeps its fixed batches,
    whose bf16 rounding the recorded evaluations were made with. `sampler` is the logits processor
    in `arguments` (from `_decoding`): it is told which rows are still going.
    """
    rows = list(range(input_ids.shape[0]))
    produced: list[list[int]] = [[] for _ in rows]
    sampler.batch_rows, sampler.going = len(rows), None
    cache_field = _cache_field()
    cache = None
    left = max_new_tokens
    while rows and left > 0:
        n = min(SAMPLING_SEGMENT, left)
        extra = {cache_field: cache} if cache is not None else {}
        output = model.generate(
            input_ids=input_ids, attention_mask=attention, max_new_tokens=n,
            return_dict_in_generate=True, **arguments, **extra,
        )  # fmt: skip
        new = output.sequences[:, input_ids.shape[1] :]
        left -= n
        going = []
        for position, (row, tokens) in enumerate(zip(rows, new.tolist(), strict=True)):
            produced[row].extend(tokens)
            # A row that stopped has a stop id; generate returns fewer than n tokens only when all did.
            if len(tokens) == n and not stops.intersection(tokens):
                going.append(position)
        if not going:
            break
        # Without a returned cache the next segment prefills the whole sequence again: slower, same tokens.
        cache, input_ids = getattr(output, cache_field, None), output.sequences
        attention = torch.cat(
            [attention, attention.new_ones(new.shape)], dim=1
        )  # no padding in a row still going
        if len(going) < len(rows):
            keep = torch.tensor(going, device=input_ids.device)
            if _can_drop_rows(cache):
                cache.batch_select_indices(keep)
            else:
                cache = None  # static or linear-attention layers: the next segment prefills instead
            input_ids, attention = input_ids[keep], attention[keep]
            rows = [rows[position] for position in going]
            sampler.going = torch.tensor(rows)
    return produced


def _can_drop_rows(cache: Any) -> bool:
    layers = getattr(cache, "layers", None)
    return layers is not None and all(hasattr(layer, "batch_select_indices") for layer in layers)


def _own_cache_implementation(model: Any) -> bool:
    """A generation config that names its cache (static, offloaded, quantized) cannot be handed the
    cache of an earlier segment: such models sample in one call."""
    return getattr(getattr(model, "generation_config", None), "cache_implementation", None) is not None


def _cache_field() -> str:
    """The name generate() takes and returns its KV cache under: `cache` in transformers 5 (where
    `past_key_values` is deprecated), `past_key_values` in the 4.x releases the package allows."""
    from transformers.generation.utils import GenerateDecoderOnlyOutput

    return "cache" if "cache" in GenerateDecoderOnlyOutput.__dataclass_fields__ else "past_key_values"


def _decoding(
    temperature: float | None, top_p: float | None, generator: torch.Generator | None
) -> tuple[dict[str, Any], InverseCdfSampler | None]:
    """model.generate's decoding arguments, and the sampler among them (None when greedy). Greedy; or
    sampling with temperature and nucleus top_p, done by `InverseCdfSampler` as the last logits
    processor of a greedy search (see there)."""
    # Cleared so a checkpoint's sampling defaults (temperature, top_k, often 50) cannot leak in or warn.
    greedy = {"do_sample": False, "num_beams": 1, "temperature": None, "top_p": None, "top_k": None}
    # Counted from each generate() call's input: with segmented sampling they would act at every
    # segment (suppress the stop, or force it), so a checkpoint's values are cleared for both modes.
    greedy |= {"min_new_tokens": None, "begin_suppress_tokens": None, "forced_eos_token_id": None}
    if temperature is None:
        return greedy, None
    if temperature <= 0:
        raise ValueError("temperature must be > 0 (None decodes greedily)")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError("top_p must be in (0, 1]")
    from transformers import LogitsProcessorList

    sampler = InverseCdfSampler(temperature, top_p or 1.0, generator)
    return {**greedy, "logits_processor": LogitsProcessorList([sampler])}, sampler


class InverseCdfSampler:
    """Draws each row's next token from softmax(scores / temperature), restricted to the nucleus of
    mass top_p, and returns scores whose only finite entry is that token, so the greedy search
    that runs it last picks exactly it.

    Why not `do_sample=True`: transformers then draws with `torch.multinomial`, which for one sample
    computes argmax(p / q) with q ~ Exp(1) over the whole vocabulary: a random number per vocabulary
    entry per row per token. On a CPU that was ~20% of GRPO's sampling time for SmolLM2's 49k
    vocabulary (64 rows: 94 ms per decode step, torch profiler, 2-core AMD EPYC). Inverse-CDF
    sampling needs one uniform number per row: the cumulative sum of the probabilities and a
    binary search. The distribution is the same; the draws come from `generator` (a resumed run
    continues its stream), or from the global RNG when there is none.
    """

    def __init__(self, temperature: float, top_p: float, generator: torch.Generator | None) -> None:
        self.temperature, self.top_p, self.generator = temperature, top_p, generator
        # Segmented sampling (`_sample_dropping_stopped_rows`): the batch's original size and the
        # rows of it still going. Every step draws for the whole batch and keeps the going rows'
        # numbers, so each row gets the draws it would get in one generate() call.
        self.batch_rows: int | None = None
        self.going: torch.Tensor | None = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            probs = _nucleus(probs, self.top_p)
        cdf = probs.cumsum(dim=-1)
        where = "cpu" if self.generator is None else self.generator.device
        rows = self.batch_rows or probs.shape[0]
        uniform = torch.rand(rows, 1, generator=self.generator, device=where)
        if self.going is not None:
            uniform = uniform[self.going]
        uniform = uniform.to(probs.device)
        # The first index whose cumulative mass exceeds u * total: a token of zero mass is never chosen.
        chosen = torch.searchsorted(cdf, uniform * cdf[:, -1:], right=True).clamp_(max=probs.shape[-1] - 1)
        picked = torch.full_like(scores, -float("inf"))
        return picked.scatter_(1, chosen, 0.0)


def _nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """probs with everything outside the smallest set of most likely tokens whose mass reaches
    top_p set to 0 (the most likely token is always kept), as transformers' TopPLogitsWarper."""
    ordered, order = probs.sort(dim=-1, descending=True)
    mass_before = ordered.cumsum(dim=-1) - ordered  # the mass of the tokens ranked above each one
    ordered = ordered.masked_fill(mass_before >= top_p, 0.0)
    return torch.zeros_like(probs).scatter_(1, order, ordered)
