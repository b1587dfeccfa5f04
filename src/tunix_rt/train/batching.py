"""Deterministic effective batches, length-bucketed, and their collation into tensors.

The order of examples in an epoch is a pure function of (seed, epoch): resuming at (epoch, batch
index) replays exactly what an uninterrupted run would have seen, with no sampler state to save.

An *effective batch* is batch_size x gradient_accumulation_steps x world_size examples, chosen
without regard to how it will be split, so 4 x 2 accumulated sees the same examples as one batch
of 8. Within it, examples are sorted by length and cut into micro-batches, so each micro-batch is
padded only to its own longest example (never to max_seq_length).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from tunix_rt.train.tokenize import TokenizedDataset

IGNORE_INDEX = -100


def steps_per_epoch(n_examples: int, effective_batch: int) -> int:
    return math.ceil(n_examples / effective_batch)


def epoch_batches(
    lengths: np.ndarray,
    effective_batch: int,
    *,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    bucket_window: int = 32,
) -> list[np.ndarray]:
    """The effective batches of one epoch, as arrays of example indices.

    Examples are grouped by length within windows of `bucket_window` effective batches: a wide
    window cuts padding to a few percent, a narrow one keeps batches closer to random (1 = random
    batches, each padded to its own longest example). docs/performance.md measures the trade-off.
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


def collate(data: TokenizedDataset, indices: np.ndarray, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, labels), right-padded to the longest example in this micro-batch.

    Right padding keeps causal attention exact without an attention mask: real tokens only ever look
    left, at other real tokens of the same example, and positions start at 0 for every row. Labels
    are IGNORE_INDEX on prompt tokens and padding, so only completion tokens (and EOS) carry loss.
    """
    lengths = data.lengths[indices]
    width = int(lengths.max())
    input_ids = np.full((len(indices), width), pad_id, dtype=np.int64)
    labels = np.full((len(indices), width), IGNORE_INDEX, dtype=np.int64)
    for row, k in enumerate(indices):
        ids = data.example(int(k))
        input_ids[row, : len(ids)] = ids
        start = int(data.prompt_lengths[k])
        labels[row, start : len(ids)] = ids[start:]
    return torch.from_numpy(input_ids), torch.from_numpy(labels)
