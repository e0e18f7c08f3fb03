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

import functools
import itertools
import math
from numbers import Integral, Real

import numpy as np
import torch
from torch import Tensor, nn

from .._core.batches import per_cell_batches
from .._core.registry import register
from .._core.sample_layout import samples_along_axes
from .._core.validation import Interval, StrOptions
from ..base import BaseINR, common_params
from ..nn.cells import (
    check_cells,
    from_cells,
    group_by_cell,
    grouped_forward,
    grouped_mse,
    locate_cells,
    n_cells_total,
    order_by_cell,
    resolve_cells,
    to_cells,
)
from ..nn.layers import BatchedLinear, Linear, SineLinear
from ._localglobal_editing import PartitionEditingMixin
from ._localglobal_sizing import auto_partitions, auto_widths
from .siren import DEFAULT_OMEGA_0, resolved_omegas

# Where the "auto" frequencies reach the paper's 30 (samples along the longest axis):
# measured, not derived (benchmarks/offgrid.py's tasks): SIREN's 60 left 64 x 64
# samples 0.1 to 0.5 dB below 15 / 15 on held-out pixels, and 32 x 32 samples 0.1 to
# 0.8 dB below 8 / 8 on every 4th pixel and at 4x.
LOCAL_GLOBAL_FULL_SAMPLES = 120

__all__ = ["MERGES", "LocalGlobalNet", "LocalGlobalSIREN", "auto_partitions", "auto_widths"]


class ConcatMerge(Linear):
    """``sin(omega_0 W [local; global])``: one ``W`` shared by every depth and partition
    (as the authors' code does)."""

    def __init__(self, local_width, global_width, n_layers, *, omega_0, generator) -> None:
        super().__init__(
            local_width + global_width,
            local_width,
            init="siren",
            omega_0=omega_0,
            generator=generator,
        )
        self.n_layers = n_layers

    def combine(self, layer: int, local: Tensor, global_: Tensor) -> Tensor:
        # W [local; global] as two products into one sum: no concatenated copy of the
        # activations every layer.
        weight, bias = self.scaled(self.omega_0)
        n_local = local.shape[-1]
        mixed = nn.functional.linear(global_, weight[:, n_local:], bias)
        return torch.sin(mixed + nn.functional.linear(local, weight[:, :n_local]))

    def merge_flops(self, n_samples: int) -> int:
        return self.n_layers * self.flops(n_samples)


class AddMerge(nn.Module):
    """``local + sin(omega_0 P_i global)``: a projection per depth (the paper's FC+Add)."""

    def __init__(self, local_width, global_width, n_layers, *, omega_0, generator) -> None:
        super().__init__()
        self.omega_0 = omega_0
        self.projections = nn.ModuleList(
            Linear(global_width, local_width, init="siren", omega_0=omega_0, generator=generator)
            for _ in range(n_layers)
        )

    def combine(self, layer: int, local: Tensor, global_: Tensor) -> Tensor:
        scaled = self.projections[layer].scaled(self.omega_0)
        return local + torch.sin(nn.functional.linear(global_, *scaled))

    def merge_flops(self, n_samples: int) -> int:
        return sum(p.flops(n_samples) for p in self.projections)


#: How global features enter the local path after each local layer, by ``merge``.
MERGES = {"concat": ConcatMerge, "add": AddMerge}


class LocalGlobalNet(nn.Module):
    """Local SIRENs (one per kept partition) merged with one global SIREN.

    ``forward_groups`` maps global coordinates grouped by partition slot,
    ``(n_slots, n_points, n_dims)``, to ``(n_slots, n_points, n_outputs)`` (or those of
    the given ``slots`` only). ``depth``
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
        # The partition table is data, computed on the CPU even when the weights are
        # built elsewhere (``load`` checks shapes on the meta device first).
        cpu = torch.device("cpu")
        kept = (
            torch.ones(n_partitions, dtype=torch.bool, device=cpu)
            if kept is None
            else kept.bool().to(cpu)
        )
        slots = torch.full((n_partitions,), -1, dtype=torch.long, device=cpu)
        slots[kept] = torch.arange(int(kept.sum()), device=cpu)
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
        self.merge = MERGES[merge](
            local_width, global_width, depth + 1, omega_0=omega_0, generator=generator
        )

    @property
    def n_slots(self) -> int:
        return self.local_output.n_groups

    def forward_groups(self, coords: Tensor, slots: Tensor | None = None) -> Tensor:
        n_slots, n_points, n_dims = coords.shape
        h = coords
        g = coords.reshape(-1, n_dims)
        for k, layer in enumerate(self.local):
            h = torch.sin(layer(h, slots, scale=self.first_omega_0 if k == 0 else self.omega_0))
            if self.local_only:
                continue
            g = self.global_layers[k](g)
            h = self.merge.combine(k, h, g.view(n_slots, n_points, g.shape[-1]))
        return self.local_output(h, slots)

    def flops(self, n_samples: int) -> int:
        """Per point: its local network, the global network and the merges."""
        total = sum(layer.flops(n_samples) for layer in self.local)
        total += self.local_output.flops(n_samples)
        if not self.local_only:
            total += sum(layer.flops(n_samples) for layer in self.global_layers)
            total += self.merge.merge_flops(n_samples)
        return total

    @property
    def grid(self) -> tuple[int, ...]:
        return self.partitions

    def silence_cells(self, partitions: Tensor) -> None:
        """Zero the local output layer of ``partitions`` (those kept): they predict 0,
        the range's middle."""
        slots = self.slot_of_partition[partitions.to(self.slot_of_partition.device)]
        slots = slots[slots >= 0]
        with torch.no_grad():
            self.local_output.weight[slots] = 0
            self.local_output.bias[slots] = 0

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


@register
class LocalGlobalSIREN(PartitionEditingMixin, BaseINR):
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
    omega_0 : float or "auto", default="auto"
        Frequency factor of the hidden sine layers (and the merges). "auto" is the
        paper's 30 from 120 samples along the signal's longest axis up, a quarter of the
        samples below, as for :class:`FINER` (half :class:`SIREN`'s cap): at 30 on few
        samples it fills the gaps between them with noise. (measured:
        ``docs/estimators/localglobal.md``, "Why the defaults").
    first_omega_0 : float or "auto", default="auto"
        Frequency factor of the first local and global layers; "auto" as ``omega_0``.
        Raise it for signals with many periods across the domain: the paper's audio
        setting (time in [-100, 100]) is ``first_omega_0=3000`` on skinr's [-1, 1].
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
    %(common_parameters)s

    Attributes
    ----------
    module_ : LocalGlobalNet
        The trained torch module.
    partitions_ : tuple of int
        Partitions per dimension.
    n_partitions_ : int
        Number of partitions of the grid, kept or not.
    partition_box_ : ndarray of shape (n_dims, 2)
        The box, in the normalised frame where ``domain_`` spans [-1, 1], that the
        partition grid splits evenly: [-1, 1] per dimension until ``extend`` grows it.
    local_width_, global_width_ : int
        The widths used (given or sized to the budget; ``global_width_`` is 0 for
        ``local_only``).
    omega_0_, first_omega_0_ : float
        The frequency factors used: the parameters, or what "auto" chose.
    partition_mask_ : ndarray of bool, shape ``partitions_``
        Partitions whose local network the model holds (all, until ``crop``).
    crop_outside_ : {"raise", "nan"}
        What ``predict`` does at points outside the kept partitions of a cropped model.
    empty_cells_ : ndarray of int
        Partitions (row-major) that received no training point; their local output
        layer is zeroed, so they predict the middle of the training range.
    n_params_ : int
        Trainable parameters (kept local networks, global network, merge).
    %(common_attributes)s

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

    # skinr.meta.LearnedInit: one set of weights cannot serve several signals.
    _prior_refusal = "its partitions and widths are sized by each signal"

    _compile_speeds_up_cpu = True

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
        "omega_0": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "first_omega_0": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "local_only": ["boolean"],
        "merge": [StrOptions(set(MERGES))],
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
        omega_0="auto",
        first_omega_0="auto",
        local_only=False,
        merge="concat",
        target_partition_size=32,
        n_params=200_000,
        global_ratio=0.1,
        learning_rate=5e-4,
        max_iter=1000,
        max_time=None,
        batch_size=None,
        lr_schedule=None,
        tol=0.0,
        n_iter_no_change=None,
        early_stopping=False,
        validation_fraction=0.1,
        validation_interval=10,
        warm_start=False,
        random_state=None,
        device="auto",
        verbose=False,
        predict_batch_size=65536,
        data_range=None,
        domain=None,
        operator=None,
        checkpoint_path=None,
        checkpoint_every=100,
        precision="float32",
        torch_compile="auto",
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
    def _structure(self, X, n_outputs):
        n_dims = X.shape[1]
        if isinstance(self.partitions, str):
            samples = tuple(samples_along_axes(X, self.predict_batch_size))
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
        return {
            "partitions_": partitions,
            "local_width_": int(local_width),
            "global_width_": 0 if self.local_only else int(global_width),
            "partition_mask_": np.ones(partitions, dtype=bool),
            "partition_box_": np.tile([-1.0, 1.0], (n_dims, 1)),
            "crop_outside_": "raise",
            **resolved_omegas(
                {"omega_0_": self.omega_0, "first_omega_0_": self.first_omega_0},
                X,
                self.predict_batch_size,
                LOCAL_GLOBAL_FULL_SAMPLES,
            ),
        }

    def _build_module(self, n_dims, n_outputs, generator):
        return self._network(n_dims, n_outputs, self.partition_mask_, generator)

    def _network(self, n_dims, n_outputs, partition_mask, generator) -> LocalGlobalNet:
        """The network of this estimator's structure over a grid of partitions whose kept
        ones are ``partition_mask`` (the fitted one, or a cropped or grown one)."""
        return LocalGlobalNet(
            n_dims,
            n_outputs,
            tuple(partition_mask.shape),
            self.local_width_,
            self.global_width_,
            self.depth,
            omega_0=self.omega_0_,
            first_omega_0=self.first_omega_0_,
            local_only=self.local_only,
            merge=self.merge,
            kept=torch.as_tensor(partition_mask.ravel(), device="cpu"),
            generator=generator,
        )

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
    def _objective(self, module, signal, generator):
        grid_coords = (self._grid_coords(chunk) for chunk in signal.chunks())
        census = check_cells(module, grid_coords, "partitions", self.partitions)
        return self._partition_objective(
            module,
            signal,
            generator,
            counts=census.counts,
            fitted={"empty_cells_": census.empty().cpu().numpy()},
        )

    def _partition_objective(self, module, signal, generator, *, counts=None, **options):
        """The loss over partitions grouped once per fit (whole signal) or per batch;
        with ``batch_size``, every step draws the same number of points from each
        partition, with replacement (the paper's sampling). ``counts`` are the points
        per partition when a census already found them."""

        def whole_signal(coords, values):
            slots = self._slots(module, coords)
            return grouped_mse(module.forward_groups, slots, coords, values, module.n_slots)

        batches = None
        if signal.sampled:
            counts, order = order_by_cell(
                lambda: (self._cells(chunk) for chunk in signal.chunks()),
                n_cells_total(self.partitions_),
                counts=counts,
            )
            batches = per_cell_batches(
                counts, order, signal.batch_size, generator, signal.batch_device
            )
        forward = functools.partial(self._training_forward, module)
        return signal.objective(
            forward, generator, whole_signal=whole_signal, batches=batches, **options
        )

    def _training_forward(self, module, coords):
        """The network at training points, which always lie in kept partitions."""
        slots = self._slots(module, coords)
        return grouped_forward(module.forward_groups, slots, coords, module.n_slots)

    # ------------------------------------------------------------ prediction
    def _load_probe(self):
        if self.partition_mask_.all():
            return super()._load_probe()
        # A cropped model may have left the centre out: there it answers NaN.
        kept, self.crop_outside_ = self.crop_outside_, "nan"
        try:
            return super()._load_probe()[0], True
        finally:
            self.crop_outside_ = kept

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
        grouped = module.forward_groups(to_cells(coords[inside], layout), layout.groups)
        out[inside] = from_cells(grouped, layout)
        return out

    # --------------------------------------------------------------- editing

    @property
    def n_partitions_(self) -> int:
        """Number of partitions of the grid (kept or not)."""
        return n_cells_total(self.partitions_)
