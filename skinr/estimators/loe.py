"""LoESine: Levels-of-Experts MLP with position-dependent weights and sine activations.

Atikuzzaman, Bae, "Efficient and Effective INR: A Dive into Levels-of-Experts (LoE) and
Sine Activation", building on Hao, Mallya, Belongie, Liu, "Implicit Neural
Representations with Levels-of-Experts", NeurIPS 2022. Neither paper released code; the
mechanics follow the LoE authors' published snippet (tile id ``floor(alpha p + beta)
mod n`` per dimension, one shared bias per layer) and are documented in the estimator.

Each position-dependent layer holds a tile of ``n_1 x ... x n_d`` candidate weight
matrices (experts) laid on a grid that repeats periodically over the domain at that
layer's scale. A point uses, at every layer, the expert of the grid cell it falls in
(``blending="nearest"``, LoE's hard selection) or a multilinear blend of the experts of
the neighbouring cells (``blending="linear"``); ``blending="gaps"`` (the default) trains
with hard selection and renders the gap between two samples that a cell border
separates as a blend of both sides' outputs. The per-layer scales form a hierarchy:
with 2 x 2 tiles and scales doubling from layer to layer, the tuple of experts a point
uses is the binary address of its quad-tree cell.
"""

from __future__ import annotations

import itertools
from numbers import Integral, Real

import numpy as np
import torch
from torch import Tensor, nn

from .._core.registry import register
from .._core.sample_layout import corner_offsets, lattice_corners, merge_distinct, sample_lattice
from .._core.validation import Interval, StrOptions
from ..base import BaseINR, common_params
from ..nn.cells import n_cells_total, resolve_cells, row_major
from ..nn.flops import linear_flops
from ..nn.layers import BatchedLinear, Linear
from ._loe_routes import ExpertRoutes

__all__ = ["PATTERNS", "LoENet", "LoESine", "tile_scales"]

ACTIVATIONS = ("sine", "leaky_relu")
LEAKY_SLOPE = 0.2
# sin(omega_0 x) per initialisation: torch's default init is chaotic at SIREN's 30.
DEFAULT_OMEGA_0 = {"default": 3.0, "siren": 30.0}


def _levels(depth: int) -> list[float]:
    return [2.0**level for level in range(1, depth + 1)]


#: Per-layer tiling of each pattern: ``depth -> (scales, offsets)``, scales in cells per
#: unit length on [0, 1], offsets in cells.
PATTERNS = {
    # Finest first.
    "fine_to_coarse": lambda depth: (_levels(depth)[::-1], [0.0] * depth),
    # Coarse to fine: with 2-wide tiles the experts along the layers address a
    # quad-tree cell.
    "quad_tree": lambda depth: (_levels(depth), [0.0] * depth),
    # 2, 2, 4, ..., 2^(depth-1), every layer after the first shifted by half a cell,
    # so consecutive levels never share a border (the community LoE code's).
    "gray_code": lambda depth: ([2.0, *_levels(depth)[: depth - 1]], [0.0] + [0.5] * (depth - 1)),
    # fine_to_coarse's scales, every tiling shifted by half a cell: the borders of
    # 2^l cells per unit then fall at odd multiples of 2^-(l+1), distinct for every
    # level, so no layer's border lies on another's (until capping gives several
    # layers one scale).
    "staggered": lambda depth: (_levels(depth)[::-1], [0.5] * depth),
}


def tile_scales(pattern: str, depth: int) -> tuple[list[float], list[float]]:
    """Cells per unit length (on [0, 1]) and offsets (in cells) of each layer's tiling.

    ``quad_tree``: 2, 4, ..., 2^depth cells per unit, coarse to fine, so with 2-wide
    tiles layer 1 splits the domain in two per dimension and every later layer halves
    the cells (the experts along the layers address a quad-tree cell). ``fine_to_coarse``:
    the same scales, finest first. ``gray_code``: 2, 2, 4, ..., 2^(depth-1) with every
    layer after the first shifted by half a cell, so consecutive levels never share a
    border (the community LoE code's arrangement).
    """
    if pattern not in PATTERNS:
        raise ValueError(f"pattern={pattern!r} is not one of {tuple(PATTERNS)}.")
    return PATTERNS[pattern](depth)


class LoENet(nn.Module):
    """MLP with ``depth`` position-dependent layers and a plain linear output layer.

    Parameters
    ----------
    n_dims, n_outputs : int
        Coordinate dimensions and output channels.
    width : int
        Features of every hidden layer.
    tiles : tuple of int
        Experts per dimension of each layer's tile (``prod(tiles)`` experts per layer).
    scales : Tensor of shape (depth, n_dims)
        Cells per unit length of each layer's tiling, on coordinates mapped to [0, 1].
    offsets : Tensor of shape (depth,)
        Shift of each layer's tiling, in cells.
    activation : {"sine", "leaky_relu"}
    blending : {"gaps", "nearest", "linear"}
        "gaps" trains as "nearest"; :meth:`forward_across_gaps` renders it.
    omega_0 : float
        Frequency factor of the sine, ``sin(omega_0 (W x + b))``.
    init : {"default", "siren"}
        "default": torch's ``nn.Linear`` initialisation for every expert (the paper's
        "no special initialisation"); "siren": SIREN's, per expert.
    shared_bias : bool
        One bias per layer shared by its experts (LoE) instead of one per expert.
    generator : torch.Generator or None
    """

    def __init__(
        self,
        n_dims: int,
        n_outputs: int,
        width: int,
        tiles: tuple[int, ...],
        scales: Tensor,
        offsets: Tensor,
        *,
        activation: str = "sine",
        blending: str = "nearest",
        omega_0: float = 30.0,
        init: str = "default",
        shared_bias: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.tiles, self.activation, self.blending = tuple(tiles), activation, blending
        self.omega_0, self.shared_bias = omega_0, shared_bias
        self.n_experts = n_cells_total(tiles)
        self.register_buffer("scales", torch.as_tensor(scales, dtype=torch.float32))
        self.register_buffer("offsets", torch.as_tensor(offsets, dtype=torch.float32))
        # The training samples' lattice per dimension (first node, spacing, index of
        # the last node), set by fit_lattice; a zero spacing means none is known.
        self.register_buffer("lattice", torch.zeros(3, n_dims))
        depth = self.scales.shape[0]
        sizes = [n_dims] + [width] * depth
        inits = ["siren_first"] + ["siren"] * (depth - 1) if init == "siren" else ["torch"] * depth
        self.experts = nn.ModuleList(
            BatchedLinear(
                self.n_experts,
                a,
                b,
                init=layer_init,
                omega_0=omega_0,
                bias=not shared_bias,
                generator=generator,
            )
            for (a, b), layer_init in zip(itertools.pairwise(sizes), inits, strict=True)
        )
        # LoE shares one bias per layer among its experts; drawn as torch's default.
        self.biases = nn.ParameterList(
            nn.Parameter(torch.empty(b).uniform_(-1 / a**0.5, 1 / a**0.5, generator=generator))
            for a, b in itertools.pairwise(sizes)
            if shared_bias
        )
        output_init = "siren" if init == "siren" else "torch"
        self.output = Linear(
            width, n_outputs, init=output_init, omega_0=omega_0, generator=generator
        )

    # ------------------------------------------------------------- routing
    def route(self, coords: Tensor) -> ExpertRoutes | list[Tensor]:
        """Each layer's expert choice for ``coords``, computed from the raw coordinates.

        Nearest blending: :class:`ExpertRoutes` (points grouped by expert, per layer);
        linear blending: one ``(n, n_experts)`` tensor of blend weights per layer.
        Computed per call (never cached across calls), once for all layers.
        """
        if self.blending != "linear":
            return ExpertRoutes.from_experts(self.experts_at(coords), self.n_experts)
        unit = (coords + 1) * 0.5  # [-1, 1] -> [0, 1]: scales count cells per unit
        tiles = torch.as_tensor(self.tiles, device=coords.device)
        return [
            self._blend_weights(unit * scale + offset - 0.5, tiles)
            for scale, offset in zip(self.scales, self.offsets, strict=True)
        ]

    def experts_at(self, coords: Tensor) -> list[Tensor]:
        """Each layer's expert (hard selection) for ``coords``, ``(n,)`` per layer."""
        unit = (coords + 1) * 0.5  # [-1, 1] -> [0, 1]: scales count cells per unit
        tiles = torch.as_tensor(self.tiles, device=coords.device)
        return [
            row_major(torch.floor(unit * scale + offset).long().remainder(tiles), self.tiles)
            for scale, offset in zip(self.scales, self.offsets, strict=True)
        ]

    # ------------------------------------------------------- between the samples
    def fit_lattice(self, distinct_per_dim: list[Tensor]) -> None:
        """Record the training samples' lattice
        (:func:`skinr._core.sample_layout.sample_lattice`)."""
        with torch.no_grad():
            self.lattice.copy_(sample_lattice(distinct_per_dim))

    def _routes_across_gaps(self, coords: Tensor):
        """Per lattice corner its weight ``(2^d, n)`` and each layer's experts
        ``(2^d, n)``, and which points' corners route differently."""
        corners = lattice_corners(coords, self.lattice)
        if corners is None:
            return None, None, None
        nodes, weights = corners
        experts = [e.view(weights.shape) for e in self.experts_at(nodes.flatten(0, 1))]
        differs = torch.stack([(e != e[:1]) for e in experts]).any(0)
        mixed = (differs & (weights > 0)).any(0)
        return weights, experts, mixed

    def forward_across_gaps(self, coords: Tensor) -> Tensor:
        """The network with hard selection at the training samples and, between two
        samples that a tiling border separates, both sides' outputs blended linearly.

        Hard selection puts a jump at every border, and borders fall between samples,
        where a render looks. The experts on either side each fitted their own samples;
        across the gap between them this weighs each side's prediction by its nearness
        (multilinearly over the ``2^d`` lattice nodes around a point). At the samples,
        and between samples that route alike, it is the hard-selection network.
        """
        weights, experts, mixed = self._routes_across_gaps(coords)
        if weights is None:
            return self(coords)
        out = self(coords, ExpertRoutes.from_experts([e[0] for e in experts], self.n_experts))
        if bool(mixed.any()):
            # Every corner of every mixed point in one pass: (corner, point) pairs.
            n_corners, inside = weights.shape[0], coords[mixed]
            pairs = inside.expand(n_corners, *inside.shape).flatten(0, 1)
            routes = ExpertRoutes.from_experts(
                [e[:, mixed].flatten() for e in experts], self.n_experts
            )
            corner_out = self(pairs, routes).view(n_corners, inside.shape[0], -1)
            blend = (weights[:, mixed, None] * corner_out).sum(0)
            out = out.index_put((mixed.nonzero().squeeze(1),), blend)
        return out

    def flops_across_gaps(self, coords: Tensor) -> int:
        """:meth:`flops` of :meth:`forward_across_gaps`: every point once, and the
        ``2^d`` corners again for points whose corners route differently."""
        weights, _, mixed = self._routes_across_gaps(coords)
        if weights is None:
            return self.flops(coords.shape[0])
        return self.flops(coords.shape[0]) + weights.shape[0] * self.flops(int(mixed.sum()))

    def _blend_weights(self, position: Tensor, tiles: Tensor) -> Tensor:
        """Multilinear weights of the experts of the 2^d cells around each point."""
        low = torch.floor(position)
        fraction = position - low
        upper = corner_offsets(position.shape[1], position.device)[:, None, :]
        cells = (low.long() + upper).remainder(tiles)  # (corner, point, dim)
        corner_weights = torch.where(upper, fraction, 1 - fraction).prod(dim=-1)
        n_points = position.shape[0]
        weights = position.new_zeros(n_points, self.n_experts)
        points = torch.arange(n_points, device=position.device).expand(upper.shape[0], n_points)
        experts = row_major(cells.reshape(-1, cells.shape[-1]), self.tiles)
        weights.index_put_(
            (points.reshape(-1), experts), corner_weights.reshape(-1), accumulate=True
        )
        return weights

    # ------------------------------------------------------------- forward
    def forward(self, coords: Tensor, routes: ExpertRoutes | list[Tensor] | None = None) -> Tensor:
        if routes is None:
            routes = self.route(coords)
        if self.blending != "linear":
            return self._forward_grouped(coords, routes)
        h = coords
        for k, blend in enumerate(routes):
            weight, bias = self._scaled_parameters(k)
            every = torch.einsum("bi,nio->bno", h, weight)
            if not self.shared_bias:
                every = every + bias.squeeze(1)
            h = torch.einsum("bno,bn->bo", every, blend)
            h = self._activate(h + bias if self.shared_bias else h)
        return self.output(h)

    def _forward_grouped(self, coords: Tensor, routes: ExpertRoutes) -> Tensor:
        # Rows stay grouped by expert from layer to layer: one gather regroups them for
        # the next layer's experts, one batched matmul (bias fused) applies all experts.
        h = coords
        for k in range(len(self.experts)):
            weight, bias = self._scaled_parameters(k)
            grouped = routes.regroup(k, h).view(self.n_experts, -1, h.shape[-1])
            h = self._activate(torch.baddbmm(bias, grouped, weight)).view(-1, weight.shape[-1])
        return self.output(h).index_select(0, routes.rows)

    def _scaled_parameters(self, k: int) -> tuple[Tensor, Tensor]:
        """Layer ``k``'s expert weights and bias, times omega_0 for the sine.

        ``sin(omega_0 (W x + b)) = sin((omega_0 W) x + omega_0 b)``: scaling the small
        parameter tensors spares two passes over the activations per layer.
        """
        layer = self.experts[k]
        bias = self.biases[k] if self.shared_bias else layer.bias
        if self.activation == "sine":
            return self.omega_0 * layer.weight, self.omega_0 * bias
        return layer.weight, bias

    def _activate(self, h: Tensor) -> Tensor:
        if self.activation == "sine":
            return torch.sin(h)
        return nn.functional.leaky_relu(h, LEAKY_SLOPE)

    def flops(self, n_samples: int) -> int:
        """A dense MLP's cost per point; linear blending evaluates every expert."""
        per_expert = self.n_experts if self.blending == "linear" else 1
        total = sum(
            per_expert * linear_flops(layer.n_in, layer.n_out, n_samples) for layer in self.experts
        )
        return total + self.output.flops(n_samples)


@register
class LoESine(BaseINR):
    """Levels-of-Experts MLP: position-dependent weights, sine (or leaky ReLU) activations.

    Parameters
    ----------
    width : int, default=64
        Features of every hidden layer (the paper: 64).
    depth : int, default=9
        Position-dependent layers; a plain linear output layer follows, so the default
        is the paper's 10-layer network. At least 2 (a hierarchy of tilings).
    tiles : int or tuple of int, default=2
        Experts per dimension of each layer's tile (an int applies to every
        dimension): 2 gives the paper's 2 x 2 tile of weight matrices in 2-D.
    pattern : {"fine_to_coarse", "quad_tree", "gray_code", "staggered"}, \
default="fine_to_coarse"
        Arrangement of the per-layer tiling scales. With the domain mapped to [0, 1]
        per dimension, the scales are 2, 4, ..., 2^depth cells per unit: finest first
        ("fine_to_coarse"), coarsest first ("quad_tree"), or LoE's "gray_code"
        (2, 2, 4, ..., 2^(depth-1), every layer after the first shifted by half a cell).
        "staggered" is fine_to_coarse with every tiling shifted by half a cell, so that
        layers of different scales never share a border (with the paper's tilings
        every layer has a border at the centre, a seam in renders); layers capped to
        one scale still share theirs.
        Scales are capped so that a cell spans ``min_samples_per_cell`` samples.
    activation : {"sine", "leaky_relu"}, default="sine"
        ``sin(omega_0 x)`` (LoE-sine) or leaky ReLU with slope 0.2 (the original LoE).
    blending : {"gaps", "nearest", "linear"}, default="gaps"
        How a point's weight is formed from the tile. "nearest": the expert of the cell
        it falls in (LoE's hard selection; the network jumps at every cell border, and
        borders fall between the samples). "gaps": trained as "nearest", identical at
        the training samples; a point between two samples that a border separates takes
        both sides' outputs, weighted linearly by nearness (multilinearly over the
        ``2^d`` surrounding samples), so a render has no seams. "linear": a multilinear
        blend of the experts of the neighbouring cells in training too (``prod(tiles)``
        times the matrix products). (measured: ``docs/estimators/loe.md``, "Why the
        defaults").
    min_samples_per_cell : int, default=8
        The finest tiling cell spans at least this many training samples along each
        dimension; finer scales are capped (``tile_scales_``). Hard expert selection
        makes the network jump at every cell border, and borders fall between samples:
        at 1 (the densest tiling the samples resolve, close to the paper's, which
        memorises) every pixel has its own experts and a render between the pixels shows
        stripes and blocks; 8 keeps the jumps 8 samples apart, at a price in fit.
        (measured: ``docs/estimators/loe.md``, "Why the defaults").
    omega_0 : float or None, default=None
        Frequency factor of the sine, ``sin(omega_0 (W x + b))``. None picks the one
        that suits ``init``: 3 for "default" (1 fits less, 6 and up fail), 30 for
        "siren" (SIREN's). (measured: ``docs/estimators/loe.md``, "Why the defaults").
    init : {"default", "siren"}, default="default"
        Expert initialisation: torch's ``nn.Linear`` default (the paper's "no special
        initialisation") or SIREN's, per expert (with omega_0 = 30 it fits better,
        see the LoESine page).
    shared_bias : bool, default=True
        One bias per layer shared by its experts (the LoE snippet) instead of one per
        expert.
    learning_rate : float, default=1e-3
        Adam's step size.
    max_iter : int, default=1000
        Number of optimizer steps.
    %(common_parameters)s

    Attributes
    ----------
    module_ : LoENet
        The trained torch module.
    tile_scales_ : ndarray of shape (depth, n_dims)
        Cells per unit length of each layer's tiling (after capping at
        ``min_samples_per_cell`` samples), on the domain mapped to [0, 1].
    n_params_ : int
        Trainable parameters (every expert of every layer).
    %(common_attributes)s

    See Also
    --------
    SIREN : The position-independent sine network.
    EnsembleINR : Independent networks per cell instead of shared, tiled weights.

    Notes
    -----
    Layer ``i`` computes ``phi(W_i(p) x + b_i)`` with
    ``W_i(p) = sum_j B_j(alpha_i u + beta_i) W_ij``: ``u`` is the coordinate mapped to
    [0, 1], ``alpha_i`` the layer's scale (cells per unit), ``beta_i`` its offset in
    cells, and ``B_j`` selects (nearest) or blends (linear) the expert whose cell
    index along each dimension, modulo the tile size, is ``j``. Expert choices are
    computed from the raw coordinates of every call, for all layers at once; with
    nearest blending the points are grouped by expert and each layer is one batched
    matmul, so the cost per point equals a dense MLP's (``count_flops``) while the
    parameters grow ``prod(tiles)``-fold.

    References
    ----------
    .. [1] A. Atikuzzaman, S.-H. Bae. "Efficient and Effective INR: A Dive into
       Levels-of-Experts (LoE) and Sine Activation".
    .. [2] Z. Hao, A. Mallya, S. Belongie, M.-Y. Liu. "Implicit Neural
       Representations with Levels-of-Experts", NeurIPS 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skinr import LoESine
    >>> from skinr.signals import to_coords
    >>> X, y = to_coords(np.random.RandomState(0).random_sample((32, 32)))
    >>> model = LoESine(width=16, depth=4, max_iter=50, random_state=0).fit(X, y)
    >>> model.tile_scales_[:, 0].tolist()  # 32 samples, 8 per cell: at most 4 cells
    [4.0, 4.0, 4.0, 2.0]
    """

    # skinr.meta.LearnedInit: one set of weights cannot serve several signals.
    _prior_refusal = "its tiles are sized by each signal's samples"

    _compile_speeds_up_cpu = True

    _domain_is_footprint = True

    _parameter_constraints = {
        **BaseINR._parameter_constraints,
        "width": [Interval(Integral, 1, None, closed="left")],
        "depth": [Interval(Integral, 1, None, closed="left")],
        "tiles": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "pattern": [StrOptions(set(PATTERNS))],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "blending": [StrOptions({"gaps", "nearest", "linear"})],
        "min_samples_per_cell": [Interval(Integral, 1, None, closed="left")],
        "omega_0": [Interval(Real, 0, None, closed="neither"), None],
        "init": [StrOptions({"default", "siren"})],
        "shared_bias": ["boolean"],
    }

    def __init__(
        self,
        width=64,
        depth=9,
        tiles=2,
        pattern="fine_to_coarse",
        activation="sine",
        blending="gaps",
        *,
        min_samples_per_cell=8,
        omega_0=None,
        init="default",
        shared_bias=True,
        learning_rate=1e-3,
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
        self.width = width
        self.depth = depth
        self.tiles = tiles
        self.pattern = pattern
        self.activation = activation
        self.blending = blending
        self.min_samples_per_cell = min_samples_per_cell
        self.omega_0 = omega_0
        self.init = init
        self.shared_bias = shared_bias
        super().__init__(**common_params(locals()))

    def _build_module(self, n_dims, n_outputs, generator):
        if self.depth < 2:
            raise ValueError(
                f"depth={self.depth} is too small for pattern={self.pattern!r}: a hierarchy "
                "of tilings needs at least 2 position-dependent layers."
            )
        tiles = resolve_cells(self.tiles, n_dims, "tiles")
        scales, offsets = tile_scales(self.pattern, self.depth)
        return LoENet(
            n_dims,
            n_outputs,
            self.width,
            tiles,
            torch.tensor(scales)[:, None].repeat(1, n_dims),
            torch.tensor(offsets),
            activation=self.activation,
            blending=self.blending,
            omega_0=self._omega_0(),
            init=self.init,
            shared_bias=self.shared_bias,
            generator=generator,
        )

    def _omega_0(self) -> float:
        if self.omega_0 is not None:
            return float(self.omega_0)
        return DEFAULT_OMEGA_0[self.init]

    def _objective(self, module, signal, generator):
        distinct = None
        for chunk in signal.chunks():
            distinct = merge_distinct(distinct, chunk)
        module.fit_lattice(distinct)
        _cap_scales(module, distinct, self.min_samples_per_cell)

        def whole_signal(coords, values):
            # The routes of the full training signal are fixed for the whole fit.
            routes = module.route(coords)
            return lambda: nn.functional.mse_loss(module(coords, routes), values)

        return signal.objective(module, generator, whole_signal=whole_signal)

    def _forward(self, module, coords):
        if self.blending == "gaps":
            return module.forward_across_gaps(coords)
        return module(coords)

    def _count_flops(self, coords):
        if self.blending != "gaps":
            return super()._count_flops(coords)
        step = self.predict_batch_size  # the chunks predict evaluates
        device = torch.device(self.device_)
        return sum(
            self.module_.flops_across_gaps(
                torch.as_tensor(coords[start : start + step], dtype=torch.float32, device=device)
            )
            for start in range(0, coords.shape[0], step)
        )

    @property
    def tile_scales_(self) -> np.ndarray:
        """Cells per unit length of each layer's tiling, ``(depth, n_dims)``."""
        return self.module_.scales.cpu().numpy().astype(np.float64)


def _cap_scales(module: LoENet, distinct: list[Tensor], samples_per_cell: int) -> None:
    """A tiling cell spans at least ``samples_per_cell`` sample spacings per dimension
    (the spacing of ``module.lattice``; for scattered samples, the mean gap between
    their distinct coordinates): finer cells alternate faster than the samples and split
    the experts arbitrarily, and every border between samples is a jump in a render."""
    with torch.no_grad():
        for k, spacing in enumerate(module.lattice[1].tolist()):
            values = distinct[k]
            if spacing == 0 and values.numel() > 1:
                spacing = float(values[-1] - values[0]) / (values.numel() - 1)
            if spacing > 0:  # in units of [0, 1]: half the spacing on [-1, 1]
                module.scales[:, k].clamp_(max=1.0 / (spacing / 2 * samples_per_cell))
