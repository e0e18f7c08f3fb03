"""EnsembleINR: a grid of independent sub-networks, one per cell of the domain.

Soltany Kadarvish, Mojtahedi, Entezari Zarch, Kazerouni, Morsali, Abtahi, Marvasti,
"Ensemble Neural Representation Networks" (code: AlirezaMorsali/ENRP).

The domain is split into a uniform grid of cells; each cell has its own small network
(SIREN by default) that sees the coordinate rescaled so its cell spans [-1, 1]
(paper Eq. 4), and a point's value is its cell's network output. All sub-networks train
together in one batched matmul per layer, cells as the batch dimension.

Where skinr departs from the official code, and why:

- Cells are half-open along each dimension (see :mod:`skinr.nn.cells`), so a point on an
  internal border belongs to the upper cell; the code instead gives every cell of a
  grid-aligned image its own ``linspace(-1, 1)``, which only exists for grid data. On a
  grid whose side is a multiple of ``grid`` both put the same pixels in each cell.
- Every sub-network gets SIREN's initialisation with biases U(±1/sqrt(fan_in)); the code's
  batched layer draws biases from a fan-in of ``out * in`` for grids above 2 but not below
  (a side effect of torch's fan computation on a 3-D tensor), which skinr does not copy.
- Cells are numbered row-major (the code transposes them; any order works if fit and
  predict agree).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real

import torch
from torch import Tensor, nn

from .._core.registry import register
from .._core.sample_layout import distinct_per_axis, samples_along_axes
from .._core.validation import Interval, StrOptions
from ..base import BaseINR, common_params
from ..nn.cells import (
    blend_width_doc,
    blended_cells,
    cells_read,
    check_cell_counts,
    check_cells,
    grouped_blended_forward,
    grouped_blended_mse,
    grouped_forward,
    grouped_mse,
    locate_cells,
    n_cells_total,
    resolve_cells,
)
from ..nn.flops import linear_flops
from ..nn.layers import BatchedLinear

__all__ = ["BASES", "EnsembleINR", "EnsembleNet"]

DEFAULT_OMEGA_0 = 30.0
# omega_0="auto": samples per cell along the fullest axis, capped at SIREN's 30.
MAX_AUTO_OMEGA_0 = 30.0


class CellFourierFeatures(nn.Module):
    """Gaussian Fourier features of the local coordinate, a feature matrix per cell.

    ``(n_cells, n_points, n_dims) -> (n_cells, n_points, 2 n_frequencies)``: each cell
    has its own ``B ~ N(0, scale^2)`` (Tancik et al.), in cycles per cell.
    """

    def __init__(self, n_cells, n_dims, n_frequencies, scale, generator=None) -> None:
        super().__init__()
        frequencies = torch.empty(n_cells, n_dims, n_frequencies)
        frequencies.normal_(0.0, scale, generator=generator)
        self.register_buffer("frequencies", frequencies)
        self.n_features = 2 * n_frequencies

    def forward(self, local: Tensor, cells: Tensor | None = None) -> Tensor:
        frequencies = self.frequencies if cells is None else self.frequencies[cells]
        phase = (2 * torch.pi) * torch.bmm((local + 1) * 0.5, frequencies)
        return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)

    def flops(self, n_samples: int) -> int:
        n_dims, n_frequencies = self.frequencies.shape[1:]
        return linear_flops(n_dims, n_frequencies, n_samples)


@dataclass(frozen=True)
class SubnetworkKind:
    """What a ``base`` of :class:`EnsembleINR` makes each cell's network of.

    ``activation`` follows every hidden layer; with ``scaled`` the layer products are
    multiplied by omega_0 first (a sine network's frequency, folded into the batched
    product). ``encoding`` maps local coordinates to the first layer's inputs.
    """

    activation: Callable[[Tensor], Tensor]
    scaled: bool
    first_init: str
    hidden_init: str
    output_init: str
    encoding: type[nn.Module] | None = None


BASES = {
    "siren": SubnetworkKind(torch.sin, True, "siren_first", "siren", "siren"),
    "relu": SubnetworkKind(torch.relu, False, "kaiming_relu", "kaiming_relu", "torch"),
    "fourier": SubnetworkKind(
        torch.relu, False, "kaiming_relu", "kaiming_relu", "torch", CellFourierFeatures
    ),
}


class EnsembleNet(nn.Module):
    """One small MLP per grid cell, evaluated for all cells in batched matmuls.

    ``forward`` maps ``(n_samples, n_dims)`` coordinates in [-1, 1] to
    ``(n_samples, n_outputs)``; ``forward_cells`` maps local coordinates already grouped
    by cell, ``(n_cells, n_points, n_dims)``, to ``(n_cells, n_points, n_outputs)``, or
    those of the given ``cells`` only, ``(len(cells), n_points, n_dims)``.
    ``depth`` counts the ``width x width`` layers of each sub-network (the paper's d).
    ``blending="nearest"`` gives every point to its own cell (the paper); "smooth"
    to the cells around it under :func:`skinr.nn.cells.blended_cells`' partition of unity.
    """

    def __init__(
        self,
        n_dims: int,
        n_outputs: int,
        grid: tuple[int, ...],
        width: int,
        depth: int,
        *,
        base: str = "siren",
        blending: str = "nearest",
        blend_width: float = 1.0,
        omega_0: float = DEFAULT_OMEGA_0,
        n_frequencies: int = 16,
        scale: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.grid, self.base, self.omega_0 = tuple(grid), base, omega_0
        self.blending, self.blend_width = blending, blend_width
        self.n_cells = n_cells_total(grid)
        kind = BASES[base]
        self.activation = kind.activation
        self.layer_scale = omega_0 if kind.scaled else 1.0
        n_in = n_dims
        self.encoding = None
        if kind.encoding is not None:
            self.encoding = kind.encoding(
                self.n_cells, n_dims, n_frequencies, scale, generator=generator
            )
            n_in = self.encoding.n_features
        sizes = [n_in] + [width] * (depth + 1)
        inits = [kind.first_init] + [kind.hidden_init] * depth
        self.hidden = nn.ModuleList(
            BatchedLinear(self.n_cells, a, b, init=init, omega_0=omega_0, generator=generator)
            for a, b, init in zip(sizes[:-1], sizes[1:], inits, strict=True)
        )
        self.output = BatchedLinear(
            self.n_cells,
            width,
            n_outputs,
            init=kind.output_init,
            omega_0=omega_0,
            generator=generator,
        )

    def forward_cells(self, local: Tensor, cells: Tensor | None = None) -> Tensor:
        h = local if self.encoding is None else self.encoding(local, cells)
        for layer in self.hidden:
            h = self.activation(layer(h, cells, scale=self.layer_scale))
        return self.output(h, cells)

    def forward(self, coords: Tensor) -> Tensor:
        if self.blending == "smooth":
            blend = blended_cells(coords, self.grid, self.blend_width)
            return grouped_blended_forward(self.forward_cells, blend, self.n_cells)
        cell, local = locate_cells(coords, self.grid)
        return grouped_forward(self.forward_cells, cell, local, self.n_cells)

    def whole_signal_loss(self, coords: Tensor, values: Tensor):
        """``loss()`` over a held signal, its points grouped by cell once."""
        if self.blending == "smooth":
            blend = blended_cells(coords, self.grid, self.blend_width)
            return grouped_blended_mse(self.forward_cells, blend, values, self.n_cells)
        cell, local = locate_cells(coords, self.grid)
        return grouped_mse(self.forward_cells, cell, local, values, self.n_cells)

    def flops(self, n_samples: int, coords: Tensor | None = None) -> int:
        """ENRP's closed form ``2 N (d_in w + d w^2 + w d_out)`` (+ the encoding), times
        the cells each point passes through (at ``coords``; the most, without them)."""
        n_samples = cells_read(n_samples, coords, self.grid, self.blending, self.blend_width)
        total = sum(layer.flops(n_samples) for layer in self.hidden) + self.output.flops(n_samples)
        if self.encoding is not None:
            total += self.encoding.flops(n_samples)
        return total

    def silence_cells(self, cells: Tensor) -> None:
        """Zero the output layer of ``cells``: they predict 0, the range's middle."""
        with torch.no_grad():
            self.output.weight[cells] = 0
            self.output.bias[cells] = 0


@register
class EnsembleINR(BaseINR):
    """Ensemble of small sub-networks, one per cell of a uniform grid over the domain.

    Parameters
    ----------
    grid : int or tuple of int, default=8
        Cells per coordinate dimension (an int applies to every dimension). The paper
        uses powers of two that divide the image side.
    width : int, default=128
        Features of every hidden layer of each sub-network (the paper's w).
    depth : int, default=1
        Number of ``width x width`` layers of each sub-network (the paper's d); the
        defaults are the structure the paper's search found for grids 8 to 32.
    base : {"siren", "relu", "fourier"}, default="siren"
        Sub-network kind: SIREN, a plain ReLU MLP, or a ReLU MLP on Gaussian Fourier
        features of the local coordinate (each cell its own feature matrix).
    blending : {"smooth", "nearest"}, default="smooth"
        How cells meet. "nearest" is the paper's: a point is its own cell's
        sub-network output, so neighbouring sub-networks meet in a step at every
        border, and a render between the training samples shows the cell grid.
        "smooth" hands over between neighbouring sub-networks with smoothstep weights
        that sum to one, in a band along each border (``blend_width``): a C1 partition
        of unity, so the ensemble is one smooth function, and where the bands hold
        training samples the neighbouring sub-networks train together there.
        ``count_flops`` counts the sub-network passes a blended point costs.
    %(blend_width)s
    omega_0 : "auto" or float, default="auto"
        Frequency factor of the SIREN sub-networks (first and hidden layers), in the
        local coordinates of a cell. "auto" uses the samples per cell along the fullest
        axis, at most 30 (``omega_0_``): a sub-network then has about the frequency
        budget per sample that SIREN's 30 gives a whole image, and predicts between
        samples instead of memorising them. The paper's 30 at any cell size fits the
        training samples exactly and renders noise between them. (measured:
        ``docs/estimators/ensemble.md``, "Why the defaults").
    n_frequencies : int, default=16
        Fourier features per sub-network (``base="fourier"`` only).
    scale : float, default=2.0
        Standard deviation of the Fourier frequencies, in cycles per cell
        (``base="fourier"`` only).
    learning_rate : float, default=3e-4
        Adam's step size. The paper uses 1e-4; 3e-4 fits better in the same steps and
        stays stable, 1e-3 diverges on some images. (measured:
        ``docs/estimators/ensemble.md``, "Why the defaults").
    max_iter : int, default=500
        Number of optimizer steps.
    %(common_parameters)s

    Attributes
    ----------
    module_ : EnsembleNet
        The trained torch module (weights of all cells stacked on the first axis).
    n_cells_ : int
        Number of cells (sub-networks).
    omega_0_ : float
        The sub-networks' frequency factor: ``omega_0``, or the one "auto" chose.
    empty_cells_ : ndarray of int
        Cells (row-major indices) that received no training point. Their output layer
        is zeroed before training: with ``blending="nearest"`` they predict the middle
        of the training range, ``y_offset_``; blended, they learn from the
        neighbouring samples their blend reaches.
    n_params_ : int
        Trainable parameters (all cells).
    %(common_attributes)s

    See Also
    --------
    SIREN : The single network the ensemble replaces.
    skinr.model_selection.StructureSearchCV : The paper's width/depth search.

    Notes
    -----
    Sub-network ``m``, of the cell with corners ``[a, b]``, sees a point ``x`` at the
    local coordinate ``2 (x - a) / (b - a) - 1`` (paper Eq. 4). With
    ``blending="nearest"`` a point is its own cell's output; cells are half-open
    ``[a, b)`` per dimension (the last cell is closed), so a point on a border belongs
    to the upper cell, and points outside the fitted domain go to the nearest edge
    cell. The FLOPs do not depend on the grid: each point passes through one
    sub-network, ``2 (n_dims w + d w^2 + w n_outputs)`` per point (paper Table I), or
    through ``2^k`` of them when blended over ``k`` split dimensions.

    References
    ----------
    .. [1] M. Soltany Kadarvish, H. Mojtahedi, H. Entezari Zarch, A. Kazerouni,
       A. Morsali, A. Abtahi, F. Marvasti. "Ensemble Neural Representation Networks".

    Examples
    --------
    >>> import numpy as np
    >>> from skinr import EnsembleINR
    >>> from skinr.signals import to_coords
    >>> X, y = to_coords(np.random.RandomState(0).random_sample((16, 16)))
    >>> model = EnsembleINR(grid=4, width=16, max_iter=50, random_state=0).fit(X, y)
    >>> model.n_cells_
    16
    """

    # skinr.meta.LearnedInit: one set of weights cannot serve several signals.
    _prior_refusal = "its cells are fitted to each signal's samples (a census of empty cells)"

    _compile_speeds_up_cpu = True

    _parameter_constraints = {
        **BaseINR._parameter_constraints,
        "grid": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "width": [Interval(Integral, 1, None, closed="left")],
        "depth": [Interval(Integral, 0, None, closed="left")],
        "base": [StrOptions(set(BASES))],
        "blending": [StrOptions({"smooth", "nearest"})],
        "blend_width": [Interval(Real, 0, 1, closed="right")],
        "omega_0": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "n_frequencies": [Interval(Integral, 1, None, closed="left")],
        "scale": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        grid=8,
        width=128,
        depth=1,
        *,
        base="siren",
        blending="smooth",
        blend_width=0.25,
        omega_0="auto",
        n_frequencies=16,
        scale=2.0,
        learning_rate=3e-4,
        max_iter=500,
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
        self.grid = grid
        self.width = width
        self.depth = depth
        self.base = base
        self.blending = blending
        self.blend_width = blend_width
        self.omega_0 = omega_0
        self.n_frequencies = n_frequencies
        self.scale = scale
        super().__init__(**common_params(locals()))

    def _structure(self, X, n_outputs):
        grid = resolve_cells(self.grid, X.shape[1], "grid")
        distinct = [values.numel() for values in distinct_per_axis(X, self.predict_batch_size)]
        check_cell_counts(grid, distinct, len(X), "grid", self.grid)
        if self.omega_0 != "auto":
            return {"omega_0_": float(self.omega_0)}
        samples = samples_along_axes(X, self.predict_batch_size)
        per_cell = max(n / g for n, g in zip(samples, grid, strict=True))
        return {"omega_0_": float(min(max(per_cell, 1.0), MAX_AUTO_OMEGA_0))}

    def _build_module(self, n_dims, n_outputs, generator):
        return EnsembleNet(
            n_dims,
            n_outputs,
            resolve_cells(self.grid, n_dims, "grid"),
            self.width,
            self.depth,
            base=self.base,
            blending=self.blending,
            blend_width=self.blend_width,
            omega_0=self.omega_0_,
            n_frequencies=self.n_frequencies,
            scale=self.scale,
            generator=generator,
        )

    def _objective(self, module, signal, generator):
        census = check_cells(module, signal.chunks(), "grid", self.grid)

        return signal.objective(
            module,
            generator,
            whole_signal=module.whole_signal_loss,
            fitted={"empty_cells_": census.empty().cpu().numpy()},
        )

    def _count_flops(self, coords):
        module = self.module_
        return module.flops(len(coords), torch.as_tensor(coords))

    @property
    def n_cells_(self) -> int:
        """Number of cells (sub-networks) of the fitted ensemble."""
        return self.module_.n_cells


EnsembleINR.__doc__ = EnsembleINR.__doc__.replace("%(blend_width)s", blend_width_doc("ensemble"))
