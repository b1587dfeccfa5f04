"""Rendered traces -> token ids with a loss boundary, stored as contiguous arrays.

Each example is `prompt ids + completion ids + end id`; the loss covers the completion and the end
id (never the prompt). The end id is the chat template's end-of-turn token for chat models (so they
learn to close their turn as the template does) and EOS otherwise (`render.completion_end_id`). The
prompt holds the whole conversation of a chat record (`render.trace_history`), so the loss covers
its last assistant turn only. Prompt and completion are tokenised separately so the boundary is exact and the
prompt ids are the very ids evaluation feeds the model (`encode_prompt` is shared with eval).
Examples that do not fit `max_seq_length` are counted and left out whole: cutting one would teach
the model to stop mid-answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunix_rt.errors import DataError
from tunix_rt.train.render import completion_end_id, render_completion, render_prompt, trace_history


def _bos_prefix(tokenizer: Any, prompt_text: str) -> list[int]:
    # Llama/Gemma tokenizers expect BOS at the start of every sequence; GPT-2 and the from-scratch
    # tokenizer do not add one. Chat templates such as Gemma's already write BOS as text: never twice.
    if tokenizer.bos_token_id is None or not getattr(tokenizer, "add_bos_token", False):
        return []
    if tokenizer.bos_token and prompt_text.startswith(tokenizer.bos_token):
        return []
    return [tokenizer.bos_token_id]


def encode_prompt(tokenizer: Any, prompt_text: str) -> list[int]:
    """The prompt's ids, exactly as training saw them (used by evaluation too)."""
    return _bos_prefix(tokenizer, prompt_text) + tokenizer(prompt_text, add_special_tokens=False).input_ids


@dataclass
class TokenizedDataset:
    """All examples in one flat int32 array; example k is tokens[offsets[k]:offsets[k+1]]."""

    tokens: np.ndarray
    offsets: np.ndarray
    prompt_lengths: np.ndarray
    source_index: np.ndarray  # position of each kept example in the loaded trace list
    too_long: int
    max_seq_length: int  # every kept example fits; padded rows never grow past it
    too_long_examples: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.prompt_lengths)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def completion_lengths(self) -> np.ndarray:
        return self.lengths - self.prompt_lengths

    def example(self, k: int) -> np.ndarray:
        return self.tokens[self.offsets[k] : self.offsets[k + 1]]


def tokenize_traces(
    traces: Sequence[Any],
    tokenizer: Any,
    *,
    system_instruction: str | None,
    max_seq_length: int,
) -> TokenizedDataset:
    if tokenizer.eos_token_id is None:
        raise DataError("the tokenizer has no EOS token: the model could never learn where an answer ends")
    prompts = [render_prompt(t.prompt, tokenizer, system_instruction, trace_history(t)) for t in traces]
    completions = [render_completion(t) for t in traces]
    prompt_ids = tokenizer(prompts, add_special_tokens=False).input_ids
    completion_ids = tokenizer(completions, add_special_tokens=False).input_ids
    end = completion_end_id(tokenizer)

    chunks: list[list[int]] = []
    prompt_lengths: list[int] = []
    kept: list[int] = []
    too_long: list[int] = []
    for k, (p_ids, c_ids) in enumerate(zip(prompt_ids, completion_ids, strict=True)):
        bos = _bos_prefix(tokenizer, prompts[k])
        ids = bos + p_ids + c_ids + [end]
        if len(ids) > max_seq_length:
            too_long.append(k)
            continue
        chunks.append(ids)
        prompt_lengths.append(len(bos) + len(p_ids))
        kept.append(k)
    if not chunks:
        raise DataError(
            f"none of the {len(traces)} examples fits training.max_seq_length={max_seq_length}; "
            "raise max_seq_length"
        )
    lengths = np.fromiter((len(c) for c in chunks), dtype=np.int64, count=len(chunks))
    offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.fromiter((t for c in chunks for t in c), dtype=np.int32, count=int(offsets[-1]))
    return TokenizedDataset(
        tokens=tokens,
        offsets=offsets,
        prompt_lengths=np.asarray(prompt_lengths, dtype=np.int64),
        source_index=np.asarray(kept, dtype=np.int64),
        too_long=len(too_long),
        max_seq_length=max_seq_length,
        too_long_examples=too_long[:20],
    )
