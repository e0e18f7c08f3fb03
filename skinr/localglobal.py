"""LocalGlobalSIREN: per-partition SIRENs fed by one global SIREN; croppable.

Ashkenazi, Treister, "Towards Croppable Implicit Neural Representations", NeurIPS 2024
(code: maorash/Local-Global-INRs).

The domain is split into equal partitions. Every partition has its own small SIREN (the
local sub-networks, computed together as one locally connected layer: a batched matmul
with the partition as the batch dimension); one global SIREN, a layer shorter, sees
every coordinate. After each local hidden layer a merge — concat(local, global) ->
linear -> sine, one module shared by every partition and every depth, as in the
authors' code — feeds the global features into the local path; the last local layer
outputs the values. Both sub-networks see the global coordinates. Because a
partition's values depend only on its own local weights and the global weights,
deleting partitions crops the represented signal without retraining.

Where skinr departs from the official code, and why:

- Partitions split the samples' footprint (each pixel owns a pixel-sized square), so a
  side that the partition count divides gets exactly equal partitions; other sizes get
  partitions that differ by one sample (padded and masked in training) instead of the
  code's resizing of the image.
- ``crop`` deletes the removed partitions' weights (the code zeroes weights, keeping
  biases and the parameter count).
"""

from __future__ import annotations

import copy
import itertools
import math
from numbers import Integral, Real

import numpy as np
import torch
from torch import Tensor, nn

from ._cells import (
    cell_bounds,
    check_cells_resolvable,
    empty_cells,
    from_cells,
    group_by_cell,
    grouped_loss,
    locate_cells,
    n_cells_total,
    resolve_cells,
    to_cells,
)
from ._validation import Interval, StrOptions, check_coords, check_is_fitted
from .base import BaseINR, _normalise, common_params
from .layers import BatchedLinear, Linear, SineLinear

__all__ = ["LocalGlobalNet", "LocalGlobalSIREN", "auto_partitions", "auto_widths"]

DEFAULT_OMEGA_0 = 30.0


def auto_partitions(n_samples: tuple[int, ...], target_partition_size: int) -> tuple[int, ...]:
    """Partitions per dimension so that each holds about ``target_partition_size`` samples."""
    return tuple(max(1, math.ceil(n / target_partition_size)) for n in n_samples)


def _global_params(n_dims: int, width: int, depth: int) -> int:
    return n_dims * width + depth * width**2 + depth * width + width


def _local_params(n_dims: int, n_outputs: int, width: int, depth: int, groups: int) -> int:
    per_group = (
        n_dims * width + depth * width**2 + n_outputs * width + (depth + 1) * width + n_outputs
    )
    return groups * per_group


def _smallest_width(count, target: float) -> int:
    """Smallest width in [1, 1000] whose parameter count reaches ``target`` (bisection)."""
    low, high = 1, 1000
    while low < high:
        middle = (low + high) // 2
        low, high = (middle + 1, high) if count(middle) < target else (low, middle)
    return low


def auto_widths(
    n_dims: int,
    n_outputs: int,
    depth: int,
    groups: int,
    n_params: int,
    global_ratio: float,
    local_only: bool = False,
) -> tuple[int, int]:
    """The paper's Appendix A: local and global widths for a total parameter budget.

    The global width is the smallest reaching ``global_ratio * n_params`` parameters
    (first and hidden layers with biases; the merge layer is not counted); the local
    width the smallest reaching 95 % of the rest; then the global width moves by one
    at a time towards 99 % of the budget while the global share stays within 25 % of
    ``global_ratio``. Returns ``(local_width, global_width)``; the global width is 0
    for ``local_only``.
    """
    if local_only:
        target = 0.95 * n_params
        local = _smallest_width(
            lambda w: _local_params(n_dims, n_outputs, w, depth, groups), target
        )
        return local, 0
    global_width = _smallest_width(
        lambda w: _global_params(n_dims, w, depth), n_params * global_ratio
    )
    global_count = _global_params(n_dims, global_width, depth)
    local_width = _smallest_width(
        lambda w: _local_params(n_dims, n_outputs, w, depth, groups),
        0.95 * (n_params - global_count),
    )
    local_count = _local_params(n_dims, n_outputs, local_width, depth, groups)
    share = global_count / n_params

    def share_ok(share):
        return abs(share - global_ratio) < 0.25 * global_ratio

    while global_count + local_count > 0.99 * n_params and share_ok(share) and global_width > 1:
        global_width -= 1
        global_count = _global_params(n_dims, global_width, depth)
        share = global_count / n_params
    while global_count + local_count < 0.99 * n_params and share_ok(share):
        global_width += 1
        global_count = _global_params(n_dims, global_width, depth)
        share = global_count / n_params
    return local_width, global_width


class LocalGlobalNet(nn.Module):
    """Local SIRENs (one per kept partition) merged with one global SIREN.

    ``forward_groups`` maps global coordinates grouped by partition slot,
    ``(n_slots, n_points, n_dims)``, to ``(n_slots, n_points, n_outputs)``. ``depth``
    counts the hidden ``local_width x local_width`` layers of each local network (the
    paper's 3: five layers); the global network has ``depth + 1`` sine layers.
    ``slot_of_partition`` maps each partition of the grid (row-major) to its slot in
    the local weights, -1 for a cropped partition.
    """

    def __init__(
        self,
        n_dims: int,
        n_outputs: int,
        partitions: tuple[int, ...],
        local_width: int,
        global_width: int,
        depth: int,
        *,
        omega_0: float = DEFAULT_OMEGA_0,
        first_omega_0: float | None = None,
        local_only: bool = False,
        merge: str = "concat",
        kept: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.partitions, self.omega_0 = tuple(partitions), omega_0
        self.first_omega_0 = omega_0 if first_omega_0 is None else first_omega_0
        self.local_only, self.merge_kind = local_only, merge
        n_partitions = n_cells_total(partitions)
        kept = torch.ones(n_partitions, dtype=torch.bool) if kept is None else kept.bool()
        slots = torch.full((n_partitions,), -1, dtype=torch.long)
        slots[kept] = torch.arange(int(kept.sum()))
        self.register_buffer("slot_of_partition", slots)
        n_slots = int(kept.sum())
        sizes = [n_dims] + [local_width] * (depth + 1)
        inits = ["siren_first"] + ["siren"] * depth
        self.local = nn.ModuleList(
            BatchedLinear(n_slots, a, b, init=i, omega_0=omega_0, generator=generator)
            for (a, b), i in zip(itertools.pairwise(sizes), inits, strict=True)
        )
        self.local_output = BatchedLinear(
            n_slots, local_width, n_outputs, init="siren", omega_0=omega_0, generator=generator
        )
        if local_only:
            return
        global_sizes = [n_dims] + [global_width] * (depth + 1)
        self.global_layers = nn.ModuleList(
            SineLinear(
                a,
                b,
                omega_0=self.first_omega_0 if k == 0 else omega_0,
                is_first=k == 0,
                generator=generator,
            )
            for k, (a, b) in enumerate(itertools.pairwise(global_sizes))
        )
        if merge == "concat":
            # One merge module, reused at every depth (as the authors' code does).
            self.merge = Linear(
                local_width + global_width,
                local_width,
                init="siren",
                omega_0=omega_0,
                generator=generator,
            )
        else:
            self.projections = nn.ModuleList(
                Linear(
                    global_width, local_width, init="siren", omega_0=omega_0, generator=generator
                )
                for _ in range(depth + 1)
            )

    @property
    def n_slots(self) -> int:
        return self.local_output.n_groups

    def forward_groups(self, coords: Tensor) -> Tensor:
        n_slots, n_points, n_dims = coords.shape
        h = coords
        g = coords.reshape(-1, n_dims)
        for k, layer in enumerate(self.local):
            h = torch.sin((self.first_omega_0 if k == 0 else self.omega_0) * layer(h))
            if self.local_only:
                continue
            g = self.global_layers[k](g)
            g_grouped = g.view(n_slots, n_points, -1)
            if self.merge_kind == "concat":
                h = torch.sin(self.omega_0 * self.merge(torch.cat([h, g_grouped], dim=-1)))
            else:
                h = h + torch.sin(self.omega_0 * self.projections[k](g_grouped))
        return self.local_output(h)

    def flops(self, n_samples: int) -> int:
        """Per point: its local network, the global network and the merges."""
        total = sum(layer.flops(n_samples) for layer in self.local)
        total += self.local_output.flops(n_samples)
        if not self.local_only:
            total += sum(layer.flops(n_samples) for layer in self.global_layers)
            if self.merge_kind == "concat":
                total += len(self.local) * self.merge.flops(n_samples)
            else:
                total += sum(p.flops(n_samples) for p in self.projections)
        return total

    def keep_slots(self, slots: Tensor) -> None:
        """Delete every local network but those at ``slots`` (ascending), in place."""
        with torch.no_grad():
            for layer in [*self.local, self.local_output]:
                layer.weight = nn.Parameter(layer.weight[slots].clone())
                layer.bias = nn.Parameter(layer.bias[slots].clone())
                layer.n_groups = int(slots.numel())
            old_to_new = torch.full(
                (int(self.slot_of_partition.max()) + 1,),
                -1,
                dtype=torch.long,
                device=self.slot_of_partition.device,
            )
            old_to_new[slots] = torch.arange(slots.numel())
            kept = self.slot_of_partition >= 0
            self.slot_of_partition[kept] = old_to_new[self.slot_of_partition[kept]]


class LocalGlobalSIREN(BaseINR):
    """Local SIRENs per partition, merged with a global SIREN; croppable after fitting.

    Parameters
    ----------
    partitions : "auto" or int or tuple of int, default="auto"
        Partitions per coordinate dimension (an int applies to every dimension).
        "auto" is the paper's automatic partitioning: about
        ``target_partition_size`` samples per partition along each dimension.
    local_width : int or None, default=None
        Features of each local network's hidden layers; None sizes it (with
        ``global_width``) to the ``n_params`` budget (the paper's Appendix A).
    global_width : int or None, default=None
        Features of the global network; None sizes it to ``global_ratio`` of the
        budget.
    depth : int, default=3
        Hidden ``local_width x local_width`` layers of each local network (the paper's
        five-layer networks); the global network has ``depth + 1`` layers.
    omega_0 : float, default=30.0
        Frequency factor of the hidden sine layers (and the merges).
    first_omega_0 : float, default=30.0
        Frequency factor of the first local and global layers. Raise it for signals
        with many periods across the domain: the paper's audio setting (time in
        [-100, 100]) is ``first_omega_0=3000`` on skinr's [-1, 1].
    local_only : bool, default=False
        True trains one independent SIREN per partition, without the global network
        (the paper's "SIREN per partition" baseline).
    merge : {"concat", "add"}, default="concat"
        How global features enter the local path after each local layer:
        ``sin(omega_0 W [local; global])`` with one ``W`` shared by all depths and
        partitions, or ``local + sin(omega_0 P_i global)`` (the paper's FC+Add).
    target_partition_size : int, default=32
        Samples per partition along each dimension for ``partitions="auto"``.
    n_params : int, default=200000
        Parameter budget when a width is None.
    global_ratio : float, default=0.1
        Share of the budget for the global network when ``global_width`` is None.
    learning_rate : float, default=5e-4
        Adam's step size (the paper's for images).
    max_iter : int, default=1000
        Number of optimizer steps.
    batch_size : int or None, default=None
        Coordinates per step: None uses the whole signal every step; an int samples
        that many without replacement within each pass. Values above the number of
        samples are clamped to it.
    lr_schedule : {"constant", "cosine", "exponential"} or None, default=None
        Learning-rate multiplier over the steps: None/"constant" keeps it, "cosine"
        anneals it to 0, "exponential" decays it to 0.1x.
    tol : float, default=0.0
        Minimum loss improvement that resets the early-stopping counter.
    n_iter_no_change : int or None, default=None
        Stop when the training loss has not improved by ``tol`` for this many
        consecutive steps; None trains for ``max_iter`` steps.
    warm_start : bool, default=False
        Continue from the fitted weights (and the fitted normalisation) on the next
        ``fit`` instead of re-initialising; Adam's moments restart.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation and batch sampling. The same int gives identical
        predictions on the CPU.
    device : str or torch.device, default="auto"
        "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".
    verbose : bool or int, default=False
        Show a progress bar with the loss and the training PSNR.
    predict_batch_size : int, default=65536
        Coordinates per forward pass in ``predict``; bounds memory at any resolution.
    data_range : float or None, default=None
        Peak used by ``score`` for PSNR; None uses the range of ``y`` seen at fit.
    domain : array-like of shape (2,) or (n_dims, 2), or None, default=None
        Coordinate box mapped to [-1, 1] for the network; None uses the bounding box
        of ``X`` at fit. Set it when later data (extension, other crops) share a frame.

    Attributes
    ----------
    module_ : LocalGlobalNet
        The trained torch module.
    partitions_ : tuple of int
        Partitions per dimension.
    local_width_, global_width_ : int
        The widths used (given or sized to the budget; ``global_width_`` is 0 for
        ``local_only``).
    partition_mask_ : ndarray of bool, shape ``partitions_``
        Partitions whose local network the model holds (all, until ``crop``).
    crop_outside_ : {"raise", "nan"}
        What ``predict`` does at points outside the kept partitions of a cropped model.
    empty_cells_ : ndarray of int
        Partitions (row-major) that received no training point; their local output
        layer is zeroed, so they predict the middle of the training range.
    loss_curve_ : list of float
        Training loss (MSE on targets scaled to [-1, 1]) after each step.
    best_loss_ : float
        Smallest value of ``loss_curve_``.
    n_iter_ : int
        Optimizer steps taken (summed over warm starts).
    stopped_early_ : bool
        Whether ``n_iter_no_change`` ended the last fit.
    fit_time_ : float
        Seconds the last ``fit`` took.
    n_params_ : int
        Trainable parameters (kept local networks, global network, merge).
    domain_ : ndarray of shape (n_dims, 2)
        Coordinate box mapped to [-1, 1]; the partitions split it evenly. Unless
        ``domain`` is set, this is the samples' footprint: along a dimension where
        ``X`` lies on a regular grid, its bounding box widened by half a spacing on
        each side.
    data_range_ : float
        Range of the training targets (1.0 for a constant signal).
    y_offset_, y_scale_ : float
        Targets are trained as ``(y - y_offset_) / y_scale_``, in [-1, 1].
    y_ndim_ : int
        Dimensionality of ``y`` at fit (1-D targets give 1-D predictions).
    n_features_in_ : int
        Coordinate dimensions.
    n_outputs_ : int
        Output channels.
    device_ : str
        Device the module lives on.

    See Also
    --------
    SIREN : The single global network.
    EnsembleINR : Independent per-cell networks on local coordinates.

    Notes
    -----
    Training on the whole signal groups the points by partition once; with
    ``batch_size`` every step draws the same number of points from each partition
    (with replacement), as the paper does. Partitions are half-open per dimension
    (the last one closed); points outside the fitted domain use the nearest edge
    partition, except in a cropped model, where they are outside the kept region.

    References
    ----------
    .. [1] M. Ashkenazi, E. Treister. "Towards Croppable Implicit Neural
       Representations", NeurIPS 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from skinr import LocalGlobalSIREN
    >>> from skinr.signals import to_coords
    >>> X, y = to_coords(np.random.RandomState(0).random_sample((32, 32)))
    >>> model = LocalGlobalSIREN(partitions=4, n_params=5000, max_iter=30,
    ...                          random_state=0).fit(X, y)
    >>> top = model.crop(keep=([-1, -1], [0, 1]))
    >>> int(top.partition_mask_.sum()), top.n_params_ < model.n_params_
    (8, True)
    """

    _domain_is_footprint = True

    _parameter_constraints = {
        **BaseINR._parameter_constraints,
        "partitions": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
            tuple,
            list,
        ],
        "local_width": [Interval(Integral, 1, None, closed="left"), None],
        "global_width": [Interval(Integral, 1, None, closed="left"), None],
        "depth": [Interval(Integral, 0, None, closed="left")],
        "omega_0": [Interval(Real, 0, None, closed="neither")],
        "first_omega_0": [Interval(Real, 0, None, closed="neither")],
        "local_only": ["boolean"],
        "merge": [StrOptions({"concat", "add"})],
        "target_partition_size": [Interval(Integral, 1, None, closed="left")],
        "n_params": [Interval(Integral, 1, None, closed="left")],
        "global_ratio": [Interval(Real, 0, 1, closed="neither")],
    }

    def __init__(
        self,
        partitions="auto",
        local_width=None,
        global_width=None,
        depth=3,
        *,
        omega_0=DEFAULT_OMEGA_0,
        first_omega_0=DEFAULT_OMEGA_0,
        local_only=False,
        merge="concat",
        target_partition_size=32,
        n_params=200_000,
        global_ratio=0.1,
        learning_rate=5e-4,
        max_iter=1000,
        batch_size=None,
        lr_schedule=None,
        tol=0.0,
        n_iter_no_change=None,
        warm_start=False,
        random_state=None,
        device="auto",
        verbose=False,
        predict_batch_size=65536,
        data_range=None,
        domain=None,
    ):
        self.partitions = partitions
        self.local_width = local_width
        self.global_width = global_width
        self.depth = depth
        self.omega_0 = omega_0
        self.first_omega_0 = first_omega_0
        self.local_only = local_only
        self.merge = merge
        self.target_partition_size = target_partition_size
        self.n_params = n_params
        self.global_ratio = global_ratio
        super().__init__(**common_params(locals()))

    # ------------------------------------------------------------- structure
    def _configure(self, X, n_outputs):
        n_dims = X.shape[1]
        if isinstance(self.partitions, str):
            samples = tuple(np.unique(X[:, k]).size for k in range(n_dims))
            if math.prod(samples) != X.shape[0]:
                # Not a full grid: scattered points count as a grid of equal sides.
                side = X.shape[0] ** (1 / n_dims)
                samples = tuple(min(n, round(side)) for n in samples)
            partitions = auto_partitions(samples, self.target_partition_size)
        else:
            partitions = resolve_cells(self.partitions, n_dims, "partitions")
        groups = n_cells_total(partitions)
        local_width, global_width = self.local_width, self.global_width
        if local_width is None or (global_width is None and not self.local_only):
            auto_local, auto_global = auto_widths(
                n_dims,
                n_outputs,
                self.depth,
                groups,
                self.n_params,
                self.global_ratio,
                self.local_only,
            )
            local_width = auto_local if local_width is None else local_width
            global_width = auto_global if global_width is None else global_width
        self.partitions_ = partitions
        self.local_width_ = int(local_width)
        self.global_width_ = 0 if self.local_only else int(global_width)
        self.partition_mask_ = np.ones(partitions, dtype=bool)
        self.partition_box_ = np.tile([-1.0, 1.0], (n_dims, 1))
        self.crop_outside_ = "raise"

    def _build_module(self, n_dims, n_outputs, generator):
        return LocalGlobalNet(
            n_dims,
            n_outputs,
            self.partitions_,
            self.local_width_,
            self.global_width_,
            self.depth,
            omega_0=self.omega_0,
            first_omega_0=self.first_omega_0,
            local_only=self.local_only,
            merge=self.merge,
            kept=torch.as_tensor(self.partition_mask_.ravel()),
            generator=generator,
        )

    def _prepare_module(self, module, coords, values):
        extension = getattr(self, "_extension", None)
        if extension is not None:
            extension.freeze(module)
            return
        grid_coords = self._grid_coords(coords)
        check_cells_resolvable(grid_coords, module.partitions, "partitions", self.partitions)
        empty = empty_cells(grid_coords, module.partitions)
        slots = module.slot_of_partition[empty]
        with torch.no_grad():
            module.local_output.weight[slots[slots >= 0]] = 0
            module.local_output.bias[slots[slots >= 0]] = 0
        self._empty_partitions = empty

    def _fit(self, X, y):
        super()._fit(X, y)
        empty = self.__dict__.pop("_empty_partitions", None)
        if empty is not None:
            self.empty_cells_ = empty.cpu().numpy()
        return self

    def _grid_coords(self, coords: Tensor) -> Tensor:
        """Normalised coordinates mapped so that the partition grid spans [-1, 1]."""
        box = torch.as_tensor(self.partition_box_, dtype=coords.dtype, device=coords.device)
        return (coords - box.mean(dim=1)) / ((box[:, 1] - box[:, 0]) / 2)

    def _cells(self, coords: Tensor) -> Tensor:
        cell, _ = locate_cells(self._grid_coords(coords), self.partitions_)
        return cell

    def _slots(self, module, coords):
        return module.slot_of_partition[self._cells(coords)]

    # -------------------------------------------------------------- training
    def _make_batches(self, coords, generator):
        n_samples = coords.shape[0]
        if self.batch_size is None or self.batch_size >= n_samples:
            yield from super()._make_batches(coords, generator)
            return
        cell = self._cells(coords)
        counts = torch.bincount(cell, minlength=n_cells_total(self.partitions_)).cpu()
        order = torch.argsort(cell.cpu(), stable=True)
        occupied = torch.nonzero(counts).ravel()
        starts = (torch.cumsum(counts, 0) - counts)[occupied]
        per_partition = max(1, self.batch_size // occupied.numel())
        while True:
            # The same number of points from every partition, drawn with replacement.
            draws = torch.rand(occupied.numel(), per_partition, generator=generator)
            picks = starts[:, None] + (draws * counts[occupied][:, None]).long()
            yield order[picks.ravel()].to(coords.device)

    def _make_loss(self, module, coords, values):
        slots = self._slots(module, coords)
        return grouped_loss(module.forward_groups, slots, coords, values, module.n_slots)

    # ------------------------------------------------------------ prediction
    def _forward(self, module, coords):
        slots = self._slots(module, coords)
        outside = slots < 0
        if not self.partition_mask_.all():
            grid_coords = self._grid_coords(coords)
            outside |= ~((grid_coords >= -1) & (grid_coords <= 1)).all(dim=1)
        out = coords.new_full((coords.shape[0], module.local_output.n_out), math.nan)
        if outside.any() and self.crop_outside_ == "raise":
            raise ValueError(
                f"{int(outside.sum())} of {coords.shape[0]} points lie outside the kept "
                "partitions of this cropped (or extended) model; predict inside its "
                "partitions, or crop with outside='nan' to get NaN there."
            )
        inside = torch.nonzero(~outside).ravel()
        layout = group_by_cell(slots[inside], module.n_slots)
        grouped = module.forward_groups(to_cells(coords[inside], layout))
        out[inside] = from_cells(grouped, layout)
        return out

    # --------------------------------------------------------------- editing
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
        grid_coords = self._grid_coords(torch.as_tensor(_normalise(X, self.domain_))).double()
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
        extended._extension = _Extension(fine_tune, new_slots)
        try:
            extended.fit(X, y)
        finally:
            extended._extension.release()
            del extended._extension
            extended.set_params(**saved)
        return extended

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

    def _grown_module(self, mask, offset, sources) -> LocalGlobalNet:
        """A module over the grown grid: old weights in place, new ones mirrored."""
        old_module = self.module_
        module = LocalGlobalNet(
            self.n_features_in_,
            self.n_outputs_,
            tuple(mask.shape),
            self.local_width_,
            self.global_width_,
            self.depth,
            omega_0=self.omega_0,
            first_omega_0=self.first_omega_0,
            local_only=self.local_only,
            merge=self.merge,
            kept=torch.as_tensor(mask.ravel()),
            generator=torch.Generator().manual_seed(0),  # overwritten below
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

    @property
    def n_partitions_(self) -> int:
        """Number of partitions of the grid (kept or not)."""
        return n_cells_total(self.partitions_)


class _Extension:
    """Fine-tuning state of :meth:`LocalGlobalSIREN.extend`: which gradients to keep."""

    def __init__(self, fine_tune: str, new_slots: Tensor) -> None:
        self.fine_tune, self.new_slots, self.handles = fine_tune, new_slots, []

    def freeze(self, module: LocalGlobalNet) -> None:
        """For "new": zero every gradient but the new partitions' local ones."""
        if self.fine_tune == "all":
            return
        keep = torch.zeros(module.n_slots, dtype=torch.bool, device=self.new_slots.device)
        keep[self.new_slots] = True
        local = {
            id(p) for layer in [*module.local, module.local_output] for p in layer.parameters()
        }
        for parameter in module.parameters():
            if id(parameter) in local:
                mask = keep.view(-1, *([1] * (parameter.dim() - 1))).to(parameter.dtype)
                self.handles.append(parameter.register_hook(lambda grad, m=mask: grad * m))
            else:
                self.handles.append(parameter.register_hook(torch.zeros_like))

    def release(self) -> None:
        for handle in self.handles:
            handle.remove()
