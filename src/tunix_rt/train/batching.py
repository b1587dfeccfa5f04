"""Deterministic effective batches (random, or length-sorted on request) and their collation into tensors.

The order of examples in an epoch is a pure function of (seed, epoch): resuming at (epoch, batch
index) replays exactly what an uninterrupted run would have seen, with no sampler state to save.

An *effective batch* is batch_size x gradient_accumulation_steps x world_size examples, chosen
without regard to how it will be split, so 4 x 2 accumulated sees the same examples as one batch
of 8. Under torchrun it is first dealt to the ranks by tokens (train/distributed.deal_by_tokens);
each share is sorted by length and cut into micro-batches; each micro-batch is then packed into
shared rows (or padded to its own longest example, never to max_seq_length).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from tunix_rt.train.tokenize import TokenizedDataset

IGNORE_INDEX = -100


def steps_per_epoch(n_examples: int, effective_batch: int) -> int:
    return math.ceil(n_examples / effective_batch)


def plan_steps(
    n_examples: int, effective_batch: int, max_steps: int | None, num_epochs: float
) -> tuple[int, int]:
    """(steps per epoch, total optimizer steps): max_steps when set, else num_epochs (a float) of epochs."""
    per_epoch = steps_per_epoch(n_examples, effective_batch)
    return per_epoch, max_steps or max(1, math.ceil(num_epochs * per_epoch))


def epoch_batches(
    lengths: np.ndarray,
    effective_batch: int,
    *,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    bucket_window: int = 1,
) -> list[np.ndarray]:
    """The effective batches of one epoch, as arrays of example indices.

    bucket_window 1 (the default): random batches, exactly what a shuffled sampler draws. A wider
    window sorts examples by length within windows of that many batches, so batches hold examples
    of similar length: less padding when packing is off, but batches that are far from random,
    which costs loss in short runs (docs/performance.md measures it).
    """
    n = len(lengths)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n) if shuffle else np.arange(n)
    window = effective_batch * bucket_window
    batches: list[np.ndarray] = []
    for start in range(0, n, window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + effective_batch] for i in range(0, len(chunk), effective_batch))
    if shuffle:
        # Without this, every window would run short examples first, long ones last.
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def micro_batches(batch: np.ndarray, lengths: np.ndarray, n_micro: int) -> list[np.ndarray]:
    """Split an effective batch into n_micro length-sorted slices of near-equal size.

    A slice is empty only when the batch has fewer examples than n_micro (an epoch's last batch).
    """
    ordered = batch[np.argsort(lengths[batch], kind="stable")]
    return list(np.array_split(ordered, n_micro))


# Row widths are rounded up so a run sees a handful of tensor shapes: oneDNN (CPU) and cuBLAS
# build a kernel per shape, and on this 2-core CPU a new shape costs ~5 ms per matmul triple,
# more than the padding the rounding adds (docs/performance.md, "stable shapes").
PACKED_ROW_MULTIPLE = 32
PADDED_ROW_MULTIPLE = 16
# Packed widths tried per micro-batch: at most this many, from the longest example up to twice it.
PACKED_WIDTH_CANDIDATES = 8


@dataclass
class Batch:
    """One micro-batch as model inputs; labels are IGNORE_INDEX wherever no loss is taken."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    position_ids: torch.Tensor | None  # None: one example per row, positions 0.. (padded layout)

    def to(self, device: torch.device) -> Batch:
        pos = self.position_ids
        return Batch(
            self.input_ids.to(device, non_blocking=True),
            self.labels.to(device, non_blocking=True),
            None if pos is None else pos.to(device, non_blocking=True),
        )


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def pack_rows(lengths: np.ndarray, width: int) -> list[list[int]]:
    """First-fit decreasing: positions into `lengths`, grouped into rows of at most `width` tokens."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in np.argsort(-lengths, kind="stable"):
        n = int(lengths[i])
        for r, free in enumerate(room):
            if n <= free:
                rows[r].append(int(i))
                room[r] -= n
                break
        else:
            rows.append([int(i)])
            room.append(width - n)
    return rows


def packed_rows(lengths: np.ndarray) -> tuple[int, list[list[int]]]:
    """(width, rows) for packing these examples at the least cost: slots (rows x width), attention weighed.

    The width is a multiple of PACKED_ROW_MULTIPLE between the longest example and twice it: the
    narrowest fit often leaves most rows holding one example (rows of 64 for examples of ~41 tokens
    waste a third of the slots), a wider row fits more of them. But attention work and memory per
    token grow with the width, so a wider row must save more slots than its attention costs; ties
    go to the narrower width.
    """
    base = round_up(int(lengths.max()), PACKED_ROW_MULTIPLE)
    stride = max(PACKED_ROW_MULTIPLE, round_up(base // PACKED_WIDTH_CANDIDATES, PACKED_ROW_MULTIPLE))
    best_width, best_rows = base, pack_rows(lengths, base)
    for width in range(base + stride, 2 * base + 1, stride):
        if len(best_rows) == 1:
            break  # one row already: anything wider is only padding
        rows = pack_rows(lengths, width)
        if _packing_cost(len(rows), width) < _packing_cost(len(best_rows), best_width):
            best_width, best_rows = width, rows
    return best_width, best_rows


# Per token, a layer's weight matmuls cost ~24 x hidden^2 FLOPs and its attention ~4 x width x
# hidden, so attention adds width / (6 x hidden) to a token's cost. 1,024 is 6 x ~170: the
# smallest hidden sizes in use, so for larger models attention is over-weighed and rows stay
# narrower than they could be, never wider. The same term stands for the attention scores' memory.
ATTENTION_WIDTH_SCALE = 1024


def _packing_cost(n_rows: int, width: int) -> float:
    return n_rows * width * (1 + width / ATTENTION_WIDTH_SCALE)


def collate(data: TokenizedDataset, indices: np.ndarray, pad_id: int, *, packed: bool) -> Batch:
    """The examples `indices` as one micro-batch, packed or padded; both give the same loss.

    packed: examples share rows of a common width (packed_rows: the fewest slots, attention weighed),
    each with its own position ids starting at 0. transformers turns restarting position ids into a
    block-diagonal causal mask (masking_utils.find_packed_sequence_indices), so no example sees
    another; train.packing.packing_problem checks that on the model before a run relies on it.

    padded: one example per row, right-padded, no attention mask. Real tokens only ever look left,
    at other real tokens of the same example, so causal attention is exact without a mask.

    Labels are IGNORE_INDEX on prompt tokens and padding, so only completion tokens (and EOS) carry
    loss; an example's first token never does, so no row predicts across an example boundary.
    """
    lengths = data.lengths[indices]
    longest = int(lengths.max())
    if packed:
        width, local_rows = packed_rows(lengths)
        rows = [[int(indices[i]) for i in row] for row in local_rows]
    else:
        rows = [[int(k)] for k in indices]
        # Padded rows take positions 0..width-1: never past max_seq_length, which a model with
        # learned positions (GPT-2's n_positions) may have been sized to.
        width = min(round_up(longest, PADDED_ROW_MULTIPLE), max(longest, data.max_seq_length))
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    labels = np.full((len(rows), width), IGNORE_INDEX, dtype=np.int64)
    # Padding keeps position 0: every pad token is then a sequence of its own, seen by nothing real.
    positions = np.zeros((len(rows), width), dtype=np.int64)
    for r, row in enumerate(rows):
        start = 0
        for k in row:
            ids = data.example(k)
            end = start + len(ids)
            input_ids[r, start:end] = ids
            first_loss = start + max(int(data.prompt_lengths[k]), 1)
            labels[r, first_loss:end] = ids[first_loss - start :]
            positions[r, start:end] = np.arange(len(ids))
            start = end
    return Batch(
        torch.from_numpy(input_ids),
        torch.from_numpy(labels),
        torch.from_numpy(positions) if packed else None,
    )
