"""Which samples each training step sees: random passes over a signal of any size."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from sklearn.utils import check_random_state
from torch import Tensor

__all__ = [
    "RANDPERM_LIMIT",
    "KeyedPermutation",
    "iterate_batches",
    "per_cell_batches",
    "validation_split",
]

# Above this many samples a pass's order comes from a keyed permutation computed per
# batch instead of a stored ``randperm`` (8 bytes per sample: 625 MB for a 78 M-sample
# video), so sampling memory follows the batch, not the signal.
RANDPERM_LIMIT = 1 << 24


class KeyedPermutation:
    """A pseudo-random permutation of ``range(n)``, evaluated for any indices on demand.

    A balanced Feistel network (6 rounds, keys from ``generator``) permutes the smallest
    even power-of-two domain holding ``n``; values that land at or above ``n`` are
    mapped again until they fall inside (cycle walking), which keeps it a bijection on
    ``range(n)``. The domain is at most 4 n, so few extra rounds are needed.
    """

    ROUNDS = 6

    def __init__(self, n: int, generator: torch.Generator) -> None:
        self.n = n
        self.half_bits = max(1, (max(n - 1, 1).bit_length() + 1) // 2)
        self.mask = (1 << self.half_bits) - 1
        self.keys = torch.randint(0, 1 << 31, (self.ROUNDS,), generator=generator).tolist()

    def _once(self, x: Tensor) -> Tensor:
        left, right = x >> self.half_bits, x & self.mask
        for key in self.keys:
            # An integer hash of (right, key), reduced to half_bits bits.
            mixed = (right * 0x2545F491 + key) & 0xFFFFFFFF
            mixed = (mixed ^ (mixed >> 15)) * 0x2C1B3C6D & 0xFFFFFFFF
            mixed = (mixed ^ (mixed >> 12)) & self.mask
            left, right = right, left ^ mixed
        return (left << self.half_bits) | right

    def __call__(self, index: Tensor) -> Tensor:
        out = self._once(index)
        outside = out >= self.n
        while outside.any():
            out[outside] = self._once(out[outside])
            outside = out >= self.n
        return out


def iterate_batches(
    n_samples: int, batch_size: int | None, generator: torch.Generator, device: torch.device
) -> Iterator[Tensor | None]:
    """Endless batches of sample indices; ``None`` means "all samples".

    Mini-batches walk through a fresh random permutation per pass (no sample repeats
    within a pass); an incomplete tail batch is skipped so every step sees the same
    number of samples. Above ``RANDPERM_LIMIT`` samples the permutation is a
    :class:`KeyedPermutation`, computed batch by batch.
    """
    if batch_size is None or batch_size >= n_samples:
        while True:
            yield None
    while True:
        if n_samples <= RANDPERM_LIMIT:
            order = torch.randperm(n_samples, generator=generator).to(device)
            for start in range(0, n_samples - batch_size + 1, batch_size):
                yield order[start : start + batch_size]
        else:
            permutation = KeyedPermutation(n_samples, generator)
            for start in range(0, n_samples - batch_size + 1, batch_size):
                yield permutation(torch.arange(start, start + batch_size)).to(device)


def per_cell_batches(
    counts: Tensor,
    order: Tensor,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
) -> Iterator[Tensor]:
    """Endless batches with the same number of samples from every occupied cell.

    ``counts`` are the samples per cell and ``order`` the sample indices sorted by
    cell (:func:`skinr.nn.cells.order_by_cell`); each batch draws
    ``batch_size // n_occupied`` samples (at least one) from every occupied cell, with
    replacement.
    """
    occupied = torch.nonzero(counts).ravel()
    starts = (torch.cumsum(counts, 0) - counts)[occupied]
    sizes = counts[occupied][:, None]
    per_cell = max(1, batch_size // occupied.numel())
    while True:
        draws = torch.rand(occupied.numel(), per_cell, generator=generator)
        picks = starts[:, None] + (draws * sizes).long()
        yield order[picks.ravel()].long().to(device)


def validation_split(
    n_samples: int, fraction: float, random_state
) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out rows (sorted) for early stopping on held-out samples.

    A random ``fraction`` of the samples, drawn by numpy from ``random_state`` (so a
    network's initialisation, drawn by torch, is the same with and without).
    """
    n_held_out = round(fraction * n_samples)
    if n_held_out < 1 or n_held_out >= n_samples:
        raise ValueError(
            f"validation_fraction={fraction} of {n_samples} samples holds out {n_held_out}; "
            "early_stopping needs at least one held-out and one training sample."
        )
    order = check_random_state(random_state).permutation(n_samples)
    return np.sort(order[n_held_out:]), np.sort(order[:n_held_out])
