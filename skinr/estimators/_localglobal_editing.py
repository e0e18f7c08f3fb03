"""Cropping and extending a fitted LocalGlobalSIREN (partition-level editing).

Kept apart from the estimator's training code: :class:`PartitionEditingMixin` adds
``crop`` and ``extend`` to :class:`skinr.LocalGlobalSIREN`.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import torch
from torch import Tensor

from .._core.domain import normalise
from .._core.validation import check_coords, check_is_fitted
from ..nn.cells import cell_bounds, n_cells_total

__all__ = ["PartitionEditingMixin"]


class PartitionEditingMixin:
    """``crop`` and ``extend`` for an estimator with a partition grid of local networks."""

    def crop(self, keep=None, *, partitions=None, outside="raise"):
        """A copy holding only the local networks of the kept partitions.

        Nothing is retrained: predictions inside the kept partitions equal this
        model's, and the parameter count drops by the removed local networks.

        Parameters
        ----------
        keep : (lower, upper) or None
            A box in coordinate space (each corner an array of ``n_dims`` values);
            every partition that overlaps it with positive volume is kept.
        partitions : array-like of bool or None
            Alternatively, a mask over the partition grid (shape ``partitions_``, or
            flat in row-major order): True keeps the partition.
        outside : {"raise", "nan"}, default="raise"
            What ``predict`` of the cropped model does at points outside the kept
            partitions: raise a ValueError, or return NaN there.

        Returns
        -------
        LocalGlobalSIREN
            The cropped, fitted estimator (``self`` is unchanged).
        """
        check_is_fitted(self)
        if (keep is None) == (partitions is None):
            raise ValueError("Pass exactly one of keep=(lower, upper) or partitions=mask.")
        if outside not in ("raise", "nan"):
            raise ValueError(f"outside={outside!r} must be 'raise' or 'nan'.")
        grid = self.partitions_
        if keep is not None:
            mask = self._partitions_overlapping(keep)
        else:
            mask = np.asarray(partitions, dtype=bool)
            if mask.size != n_cells_total(grid):
                raise ValueError(
                    f"partitions mask has {mask.size} entries; the model has "
                    f"{n_cells_total(grid)} partitions ({'x'.join(map(str, grid))})."
                )
            mask = mask.reshape(grid)
        mask = mask & self.partition_mask_
        if not mask.any():
            raise ValueError("The crop keeps no partition of the model.")
        cropped = copy.deepcopy(self)
        module = cropped.module_
        kept_slots = module.slot_of_partition[torch.as_tensor(mask.ravel())].to("cpu")
        module.keep_slots(kept_slots.to(module.slot_of_partition.device))
        module.slot_of_partition[torch.as_tensor(~mask.ravel())] = -1
        cropped.partition_mask_ = mask
        cropped.crop_outside_ = outside
        cropped.n_params_ = sum(p.numel() for p in module.parameters() if p.requires_grad)
        return cropped

    def extend(self, X, y, *, fine_tune="all", max_iter=None, learning_rate=None):
        """A copy grown to new partitions beyond the fitted ones, then fine-tuned.

        The partition grid extends by whole partitions of the same size in every
        direction the new samples reach (coordinates keep their fitted frame, so the
        networks see old points exactly as before). Each new partition gets a local
        network copied from the old partition at its mirror position across the old
        border (mirror padding, as in the paper), then training continues.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_dims)
            Samples of the extended signal: the new region, and the old one too when
            all weights are fine-tuned.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Values at ``X``.
        fine_tune : {"all", "new"}, default="all"
            "all" fine-tunes every weight on ``(X, y)`` (the paper; include the old
            region in ``X`` or its quality drifts); "new" trains only the new
            partitions' local networks, so predictions in the old partitions stay
            exactly as they were.
        max_iter : int or None, default=None
            Fine-tuning steps; None uses ``self.max_iter``.
        learning_rate : float or None, default=None
            Fine-tuning step size; None uses ``self.learning_rate``.

        Returns
        -------
        LocalGlobalSIREN
            The extended, fitted estimator (``self`` is unchanged).
        """
        check_is_fitted(self)
        if fine_tune not in ("all", "new"):
            raise ValueError(f"fine_tune={fine_tune!r} must be 'all' or 'new'.")
        X = check_coords(self, X)
        grid_coords = self._grid_coords(torch.as_tensor(normalise(X, self.domain_))).double()
        old = np.asarray(self.partitions_)
        # Partition index along each dimension, unclamped: negative or >= old beyond.
        index = torch.floor((grid_coords + 1) * torch.as_tensor(old / 2)).long().numpy()
        index = np.where((grid_coords.numpy() == 1) & (index == old), old - 1, index)
        low = np.minimum(index.min(axis=0), 0)
        high = np.maximum(index.max(axis=0), old - 1)
        new = high - low + 1
        if np.array_equal(new, old):
            raise ValueError(
                "X lies within the fitted partitions; extend grows the signal beyond "
                "them. To fine-tune in place, fit with warm_start=True."
            )
        offset = -low
        placed = np.zeros(tuple(new), dtype=bool)
        placed[tuple(slice(o, o + c) for o, c in zip(offset, old, strict=True))] = (
            self.partition_mask_
        )
        has_data = np.zeros(tuple(new), dtype=bool)
        has_data[tuple((index + offset).T)] = True
        mask = placed | has_data
        sources = self._mirror_sources(mask & ~placed, offset)

        extended = copy.deepcopy(self)
        cell_size = (self.partition_box_[:, 1] - self.partition_box_[:, 0]) / old
        box_low = self.partition_box_[:, 0] + low * cell_size
        extended.partition_box_ = np.stack([box_low, box_low + new * cell_size], axis=1)
        extended.partitions_ = tuple(int(n) for n in new)
        extended.partition_mask_ = mask
        extended.module_ = self._grown_module(mask, offset, sources)
        old_empty = np.stack(np.unravel_index(self.empty_cells_, self.partitions_), axis=1)
        extended.empty_cells_ = np.ravel_multi_index(tuple((old_empty + offset).T), tuple(new))
        new_slots = extended.module_.slot_of_partition[torch.as_tensor((mask & ~placed).ravel())]
        overrides = {
            "warm_start": True,
            "max_iter": self.max_iter if max_iter is None else max_iter,
            "learning_rate": self.learning_rate if learning_rate is None else learning_rate,
        }
        saved = {name: getattr(extended, name) for name in overrides}
        extended.set_params(**overrides)
        try:
            extended._validate_params()
            extended._fit(
                X, y, functools.partial(extended._extension_objective, fine_tune, new_slots)
            )
        finally:
            extended.set_params(**saved)
        return extended

    def _extension_objective(self, fine_tune, new_slots, module, signal, generator):
        """Fine-tuning after :meth:`extend`: the partitions' usual loss, without a
        census (the grown grid's empty cells are known), and with "new" every gradient
        but the new partitions' local ones masked out."""
        frozen = [] if fine_tune == "all" else _all_but_new_local(module, new_slots)
        return self._partition_objective(module, signal, generator, frozen=frozen)

    def _mirror_sources(self, created: np.ndarray, offset: np.ndarray) -> dict:
        """For each new partition, the old partition (grid index) its weights copy."""
        old = np.asarray(self.partitions_)
        kept = np.argwhere(self.partition_mask_)
        sources = {}
        for position in np.argwhere(created):
            j = position - offset
            # Reflect across the old border (mirror padding), then clamp into the grid.
            j = np.where(j < 0, -1 - j, j)
            j = np.where(j >= old, 2 * old - 1 - j, j)
            j = np.clip(j, 0, old - 1)
            if not self.partition_mask_[tuple(j)]:
                j = kept[np.argmin(((kept - j) ** 2).sum(axis=1))]
            sources[tuple(position)] = tuple(j)
        return sources

    def _grown_module(self, mask, offset, sources):
        """A module over the grown grid: old weights in place, new ones mirrored."""
        old_module = self.module_
        module = self._network(
            self.n_features_in_,
            self.n_outputs_,
            mask,
            torch.Generator().manual_seed(0),  # overwritten below
        ).to(old_module.slot_of_partition.device)
        old_slots = old_module.slot_of_partition.view(self.partitions_)
        origin = {}
        for position in np.argwhere(mask):
            key = tuple(position)
            old_position = sources.get(key, tuple(position - offset))
            origin[key] = int(old_slots[old_position])
        source_slots = torch.as_tensor([origin[tuple(p)] for p in np.argwhere(mask)])
        state = module.state_dict()
        for name, value in old_module.state_dict().items():
            if name == "slot_of_partition":
                continue
            if name.startswith(("local.", "local_output.")):
                value = value[source_slots.to(value.device)]
            state[name] = value.clone()
        module.load_state_dict(state)
        return module

    def _partitions_overlapping(self, keep) -> np.ndarray:
        lower, upper = (
            np.broadcast_to(np.asarray(c, dtype=float), (self.n_features_in_,)) for c in keep
        )
        if not np.all(lower < upper):
            raise ValueError(f"keep={keep!r}: every lower corner value must be below the upper.")
        center = self.domain_.mean(axis=1)
        half = (self.domain_[:, 1] - self.domain_[:, 0]) / 2
        box = self.partition_box_
        bounds = cell_bounds(self.partitions_).numpy()  # (n, n_dims, 2) in [-1, 1]
        bounds = (
            box.mean(axis=1)[None, :, None] + (box[:, 1] - box[:, 0])[None, :, None] / 2 * bounds
        )
        low = center + half * bounds[:, :, 0]
        high = center + half * bounds[:, :, 1]
        overlaps = ((low < upper) & (high > lower)).all(axis=1)
        return overlaps.reshape(self.partitions_)


def _all_but_new_local(module, new_slots: Tensor) -> list:
    """Gradient masks keeping only the local networks at ``new_slots``."""
    keep = torch.zeros(module.n_slots, dtype=torch.bool, device=new_slots.device)
    keep[new_slots] = True
    local = {id(p) for layer in [*module.local, module.local_output] for p in layer.parameters()}
    frozen = []
    for parameter in module.parameters():
        if id(parameter) in local:
            mask = keep.view(-1, *([1] * (parameter.dim() - 1))).to(parameter.dtype)
            frozen.append((parameter, mask))
        else:
            frozen.append((parameter, None))
    return frozen
