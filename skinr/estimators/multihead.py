"""MultiHeadReLU: a ReLU body shared by sparse linear heads, one head per grid cell.

Aftab, Morsali, "Multi-Head ReLU Implicit Neural Representation Networks" (code:
AlirezaMorsali/MH-RELU-INR, TensorFlow).

The domain is split into a grid of cells. A ReLU MLP (the body) maps a coordinate,
rescaled so its cell spans [-1, 1], to a feature vector; each cell has one linear
output neuron per channel (its head), connected to ``n_connections`` body features
chosen at random when the model is built. Cells share the body, so one body pass at
a local position gives that position's value in every cell at once: on a grid whose
cells all hold the same local positions, skinr runs the body once per local position
and applies all heads together (the grid fast path). Other coordinates take the
general path: body per point, then that point's own head.

Where skinr departs from the official code, and why:

- Cells split the samples' footprint (:func:`skinr._core.sample_layout.sample_footprint`): on an
  image, each pixel owns one pixel-sized square, so a 256-pixel side splits into 64
  cells of exactly 4 pixels, and local coordinates are the pixel centres within a cell
  (``(2 j + 1) / P - 1`` for ``P`` pixels per cell). The code instead gives every cell
  ``linspace(-1, 1, P)``, which is a different function at every resolution; skinr's
  is one continuous function of position, so super-resolution and scattered points
  mean the same thing as the training grid.
- Body biases start U(±1/sqrt(fan_in)) (torch's default), not zero as in Keras: with
  one sample per cell (as many heads as pixels) every local coordinate is the cell
  centre, 0, where a zero-bias ReLU body is exactly 0 and receives no gradient.
- The connections are drawn from ``random_state`` (the code is unseeded); a head's
  connections are distinct and sorted.
- Colour: one head per cell and channel (the code converts images to grey).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from numbers import Integral, Real

import torch
from torch import Tensor, nn

from .._core.registry import register
from .._core.sample_layout import distinct_rows, samples_along_axes
from .._core.validation import Interval, StrOptions
from ..base import BaseINR, common_params
from ..nn.cells import (
    BlendedCells,
    SharedGrid,
    blend_outputs,
    blend_width_doc,
    blended_cells,
    cells_read,
    check_cells,
    locate_cells,
    n_cells_total,
    resolve_cells,
    shared_local_grid,
)
from ..nn.layers import Linear
from ._multihead_heads import SparseHeads

__all__ = ["MultiHeadNet", "MultiHeadReLU", "SparseHeads"]

# heads="auto": samples per cell along each axis (the paper's 64 heads on 256 pixels),
# and the most heads per axis.
SAMPLES_PER_HEAD = 4
MAX_AUTO_HEADS = 64


@dataclass
class RepeatedPositions:
    """Points whose local positions repeat across cells: ``template`` holds the distinct
    positions, ``inverse[i]`` point ``i``'s among them, ``cell[i]`` its cell. Blended,
    the entries run over every (corner, point) pair and ``blend`` combines them.
    ``table_heads``: the heads in use when running each of them at every distinct
    position costs at most 4 times the points' own reads (None otherwise), and
    ``table_column[i]`` entry ``i``'s head among them; found once, reused every step."""

    template: Tensor
    inverse: Tensor
    cell: Tensor
    blend: BlendedCells | None = None
    table_heads: Tensor | None = None
    table_column: Tensor | None = None

    def __post_init__(self) -> None:
        used = torch.unique(self.cell)
        if self.template.shape[0] * used.numel() <= 4 * self.inverse.numel():
            self.table_heads = used
            self.table_column = torch.searchsorted(used, self.cell)


class MultiHeadNet(nn.Module):
    """ReLU body on cell-local coordinates + :class:`SparseHeads`, one head per cell.

    ``forward`` is the general path, ``(n, n_dims) -> (n, n_outputs)``;
    ``forward_grid`` evaluates local positions shared by all cells,
    ``(n_local, n_dims) -> (n_local, n_heads, n_outputs)``. ``depth`` counts the body's
    ReLU layers (the paper: 4 of width 256). ``blending="nearest"`` gives a point its
    own cell's head (the paper); "smooth" the heads of the cells around it, each on the
    body at the point's position in that cell, weighted by
    :func:`skinr.nn.cells.blended_cells` (no grid fast path then: the repeated-position
    path serves regular grids).
    """

    def __init__(
        self,
        n_dims: int,
        n_outputs: int,
        heads: tuple[int, ...],
        width: int = 256,
        depth: int = 4,
        n_connections: int = 64,
        *,
        head_bias: bool = True,
        head_init_bound: float | None = None,
        blending: str = "nearest",
        blend_width: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.grid = tuple(heads)
        self.blending, self.blend_width = blending, blend_width
        self.n_heads = n_cells_total(heads)
        sizes = [n_dims] + [width] * depth
        self.body = nn.ModuleList(
            Linear(a, b, init="glorot", generator=generator) for a, b in itertools.pairwise(sizes)
        )
        with torch.no_grad():
            # Not Keras' zero biases: a one-sample cell's local coordinate is its centre,
            # 0, where a zero-bias ReLU body outputs exactly 0 and gets no gradient.
            for layer in self.body:
                layer.bias.uniform_(-(layer.n_in**-0.5), layer.n_in**-0.5, generator=generator)
        self.heads = SparseHeads(
            self.n_heads,
            width,
            n_connections,
            n_outputs,
            bias=head_bias,
            init_bound=head_init_bound,
            generator=generator,
        )

    def features(self, local: Tensor) -> Tensor:
        """Body output at local coordinates, ``(n, n_dims) -> (n, width)``."""
        h = local
        for layer in self.body:
            h = torch.relu(layer(h))
        return h

    def locate(self, coords: Tensor) -> tuple[Tensor, Tensor, BlendedCells | None]:
        """Head and local coordinate of every point, or of every (corner, point) pair
        with the blend that combines them."""
        if self.blending != "smooth":
            return (*locate_cells(coords, self.grid), None)
        blend = blended_cells(coords, self.grid, self.blend_width)
        return blend.cell.reshape(-1), blend.local.reshape(-1, coords.shape[1]), blend

    def forward(self, coords: Tensor) -> Tensor:
        cell, local, blend = self.locate(coords)
        out = self.heads.forward_points(self.features(local), cell)
        return out if blend is None else blend_outputs(out, blend)

    def forward_grid(self, template: Tensor, heads: Tensor | None = None) -> Tensor:
        return self.heads.forward_grid(self.features(template), heads)

    def repeated_positions(self, coords: Tensor) -> RepeatedPositions | None:
        """The points' local positions, when they repeat across cells (any regular grid
        the heads align with, whatever its resolution or the chunk it comes in); None
        when most points sit at positions of their own (scattered points)."""
        cell, local, blend = self.locate(coords)
        atol = 1e-5 + 2e-6 * max(self.grid)
        keys = torch.round(local / atol).long()
        distinct = distinct_rows(keys, limit=local.shape[0] // 2)
        if distinct is None:
            return None
        inverse, n_distinct = distinct
        counts = torch.bincount(inverse, minlength=n_distinct)
        template = local.new_zeros(n_distinct, local.shape[1]).index_add_(0, inverse, local)
        template /= counts.unsqueeze(1).to(local.dtype)
        return RepeatedPositions(template, inverse, cell, blend)

    def forward_repeated(self, positions: RepeatedPositions) -> Tensor:
        """The body once per distinct local position, each point's own heads on it.

        When few positions and heads repeat, every head in use runs at every position
        in one flat pass and each point picks its entry, so training's backward
        scatters one number per point (gathering the features per point instead
        scatters a whole connection row per point into a few body rows: measured
        10x slower per step)."""
        features = self.features(positions.template)
        heads = self.heads
        if positions.table_heads is not None:
            table = heads.forward_grid(features, positions.table_heads)
            out = table[positions.inverse, positions.table_column]
        else:
            connections = heads.connections[positions.cell]
            gathered = features[positions.inverse.unsqueeze(1), connections]
            out = torch.bmm(gathered.unsqueeze(1), heads.weight[positions.cell]).squeeze(1)
            if heads.bias is not None:
                out = out + heads.bias[positions.cell]
        return out if positions.blend is None else blend_outputs(out, positions.blend)

    def repeated_flops(self, positions: RepeatedPositions) -> int:
        """What :meth:`forward_repeated` computes."""
        used = positions.table_heads
        n_reads = (
            positions.inverse.numel()
            if used is None
            else positions.template.shape[0] * used.numel()
        )
        return self.body_flops(positions.template.shape[0]) + self.heads.flops(n_reads)

    def shared_grid(self, coords: Tensor) -> SharedGrid | None:
        """The grid fast path's layout of ``coords``, or None when it does not apply
        (always, blended: a point reads several heads)."""
        if self.blending == "smooth":
            return None
        cell, local = locate_cells(coords, self.grid)
        # float32 rounding of a coordinate grows with the cells per dimension.
        atol = 1e-5 + 2e-6 * max(self.grid)
        return shared_local_grid(local, cell, self.n_heads, atol=atol)

    def body_flops(self, n_points: int) -> int:
        return sum(layer.flops(n_points) for layer in self.body)

    def flops(self, n_samples: int, coords: Tensor | None = None) -> int:
        """General path: the body and a head per point and cell it reads (at ``coords``;
        the most, without them)."""
        n_evaluations = cells_read(n_samples, coords, self.grid, self.blending, self.blend_width)
        return self.body_flops(n_evaluations) + self.heads.flops(n_evaluations)

    def grid_flops(self, n_local: int, n_heads: int) -> int:
        """Grid fast path: the body once per local position, every head at each."""
        return self.body_flops(n_local) + self.heads.flops(n_local * n_heads)

    def silence_cells(self, cells: Tensor) -> None:
        """Zero the heads of ``cells``: they predict 0, the range's middle."""
        with torch.no_grad():
            self.heads.weight[cells] = 0
            if self.heads.bias is not None:
                self.heads.bias[cells] = 0


@register
class MultiHeadReLU(BaseINR):
    """ReLU MLP body shared by sparse linear heads, one head per cell of a grid.

    Parameters
    ----------
    heads : "auto", int or tuple of int, default="auto"
        Cells (heads) per coordinate dimension (an int applies to every dimension). The
        paper's best generalisation on a 256 x 256 image is 64 x 64 heads, 4 pixels a
        side per cell; "auto" keeps those 4 samples per cell along every axis, with 1
        to 64 heads per axis (``heads_``): a fixed 64 gives a 64-pixel image one pixel
        per cell (a head per pixel, which renders blocks) and refuses smaller ones.
    width : int, default=256
        Features of every body layer.
    depth : int, default=4
        Number of ReLU layers of the body (the paper: 4).
    n_connections : int, default=64
        Body features each head reads (the paper's alpha: 32, 64 or 256); at most
        ``width``. ``n_connections=width`` makes every head dense.
    head_bias : bool, default=True
        Whether each head learns a bias (the paper's 0.464 M parameters include it).
    head_init_bound : float or None, default=None
        Head weights start U(±head_init_bound); None uses the official code's
        ``sqrt(3 / (n_connections * n_heads))``, tiny for many heads.
    blending : {"smooth", "nearest"}, default="smooth"
        How heads meet. "nearest" is the paper's: a point reads its own cell's head,
        so the output steps at every cell border and a render between the training
        samples shows the cells as blocks. "smooth" hands over between neighbouring
        heads, each on the body at the point's position in its own cell, with
        smoothstep shares that sum to one, in a band along each border
        (``blend_width``; a C1 partition of unity): a point in a band costs a body pass
        and a head read per head it reads off a grid, and on a regular grid the body
        still runs once per distinct local position.
    %(blend_width)s
    fast_path : {"auto", True, False}, default="auto"
        The grid fast path (one body pass per local position, all heads together),
        which applies when the coordinates hold the same local positions in every cell
        they occupy (a grid whose shape the heads divide). "auto" takes it whenever it
        applies, in training and prediction; True also requires it for training and
        raises before training when the data do not allow it; False always takes the
        general path (the same function, computed per point).
    weight_decay : float, default=3e-5
        L2 penalty on every weight and bias, added to the gradient as Adam's
        ``weight_decay`` does. The paper uses none (0), which fits the training samples
        closely and fills the space between them with whatever the body's ReLU kinks do:
        blotches that repeat with the cells. The default trades fit for what lies
        between samples; larger values gain a little more held out and lose the fit
        fast; ``weight_decay=0`` for a dense fit that should memorise. (measured:
        ``docs/estimators/multihead.md``, "Why the defaults").
    learning_rate : float, default=3e-3
        Adam's step size. The paper uses 1e-3; with the exponential decay, 3e-3 fits as
        well or better; 1e-2 fits further but predicts held-out pixels worse. (measured:
        ``docs/estimators/multihead.md``, "Why the defaults").
    max_iter : int, default=2000
        Number of optimizer steps (the paper trains 2000 full-signal epochs).
    %(common_parameters)s

    Attributes
    ----------
    module_ : MultiHeadNet
        The trained torch module.
    heads_ : tuple of int
        Heads per coordinate dimension (``heads``, or what "auto" chose).
    n_heads_ : int
        Number of heads (cells).
    empty_cells_ : ndarray of int
        Cells (row-major indices) that received no training point. Their heads are
        zeroed before training: with ``blending="nearest"`` they predict the middle of
        the training range, ``y_offset_``; blended, they learn from the neighbouring
        samples their blend reaches.
    grid_fast_path_ : bool
        Whether training ran the body once per distinct local position (the grid fast
        path, or blended, the repeated-position path).
    n_params_ : int
        Trainable parameters (body and heads).
    %(common_attributes)s

    See Also
    --------
    EnsembleINR : One independent network per cell instead of one shared body.
    FourierFeatureMLP : The other remedy for a ReLU network's spectral bias.

    Notes
    -----
    With ``blending="nearest"`` a point in cell ``m`` is predicted as
    ``w_m . f(u_m)[c_m] + b_m``: ``f`` is the body, ``u_m`` the point's coordinate
    rescaled so cell ``m`` spans [-1, 1], ``c_m`` the head's fixed connections; cells
    are half-open per dimension (the last one closed). Blended, the prediction is
    ``sum_m s_m (w_m . f(u_m)[c_m] + b_m)`` over the cells around the point, with the
    smoothstep shares ``s_m`` of :func:`skinr.nn.cells.blended_cells`.

    With ``fast_path`` on, a grid of ``P`` positions per cell over ``H`` cells costs
    ``P`` body passes and ``P H`` head evaluations instead of ``P H`` of each: that is
    where the paper's render-FLOP savings come from, and ``count_flops`` counts what is
    computed. ``grid_coordinates(shape)`` lays out a grid over the fitted footprint
    (e.g. 512 x 512 for a model fitted at 256 x 256) on which the fast path applies.

    References
    ----------
    .. [1] A. Aftab, A. Morsali. "Multi-Head ReLU Implicit Neural Representation
       Networks".

    Examples
    --------
    >>> import numpy as np
    >>> from skinr import MultiHeadReLU
    >>> from skinr.signals import to_coords
    >>> X, y = to_coords(np.random.RandomState(0).random_sample((32, 32)))
    >>> model = MultiHeadReLU(heads=8, width=32, depth=2, n_connections=8, max_iter=50,
    ...                       random_state=0).fit(X, y)
    >>> model.n_heads_, model.grid_fast_path_
    (64, True)
    """

    # skinr.meta.LearnedInit: one set of weights cannot serve several signals.
    _prior_refusal = "its heads are laid on each signal's grid"

    _domain_is_footprint = True

    _parameter_constraints = {
        **BaseINR._parameter_constraints,
        "heads": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left"), tuple, list],
        "width": [Interval(Integral, 1, None, closed="left")],
        "depth": [Interval(Integral, 1, None, closed="left")],
        "n_connections": [Interval(Integral, 1, None, closed="left")],
        "head_bias": ["boolean"],
        "head_init_bound": [Interval(Real, 0, None, closed="neither"), None],
        "blending": [StrOptions({"smooth", "nearest"})],
        "blend_width": [Interval(Real, 0, 1, closed="right")],
        "fast_path": [StrOptions({"auto"}), "boolean"],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        heads="auto",
        width=256,
        depth=4,
        n_connections=64,
        *,
        head_bias=True,
        head_init_bound=None,
        blending="smooth",
        blend_width=0.25,
        fast_path="auto",
        weight_decay=3e-5,
        learning_rate=3e-3,
        max_iter=2000,
        max_time=None,
        batch_size=None,
        lr_schedule="exponential",
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
        self.heads = heads
        self.width = width
        self.depth = depth
        self.n_connections = n_connections
        self.head_bias = head_bias
        self.head_init_bound = head_init_bound
        self.blending = blending
        self.blend_width = blend_width
        self.fast_path = fast_path
        self.weight_decay = weight_decay
        super().__init__(**common_params(locals()))

    @property
    def _adam_options(self) -> dict:
        return {"weight_decay": self.weight_decay}

    def _build_module(self, n_dims, n_outputs, generator):
        if self.n_connections > self.width:
            raise ValueError(
                f"n_connections={self.n_connections} exceeds the body width "
                f"({self.width}): a head cannot read more features than the body has."
            )
        return MultiHeadNet(
            n_dims,
            n_outputs,
            self.heads_,
            self.width,
            self.depth,
            self.n_connections,
            head_bias=self.head_bias,
            head_init_bound=self.head_init_bound,
            blending=self.blending,
            blend_width=self.blend_width,
            generator=generator,
        )

    def _structure(self, X, n_outputs):
        if self.heads != "auto":
            return {"heads_": resolve_cells(self.heads, X.shape[1], "heads")}
        samples = samples_along_axes(X, self.predict_batch_size)
        return {
            "heads_": tuple(min(max(n // SAMPLES_PER_HEAD, 1), MAX_AUTO_HEADS) for n in samples)
        }

    def _objective(self, module, signal, generator):
        census = check_cells(module, signal.chunks(), "heads", self.heads)
        if self.fast_path is True and signal.sampled:
            raise ValueError(
                "fast_path=True trains on the whole grid every step; it cannot be "
                "combined with batch_size. Use fast_path='auto' or batch_size=None."
            )
        # Sampled batches (a streamed big signal among them) take the general path.
        shared = repeated = None
        if not signal.sampled and self.fast_path is not False:
            shared = module.shared_grid(signal.held()[0])
            if shared is None and module.blending == "smooth":
                repeated = module.repeated_positions(signal.held()[0])
        if self.fast_path is True and shared is None and repeated is None:
            raise ValueError(
                f"fast_path=True, but heads={self.heads!r} do not split the training "
                "coordinates into cells holding the same local positions (the data "
                "are not a grid whose shape the heads divide). Use heads that divide "
                "the grid's shape, or fast_path='auto' to train on the general path."
            )

        def grid_loss(coords, values):
            grid_values = values[shared.index.t()]
            return lambda: nn.functional.mse_loss(
                module.forward_grid(shared.template, shared.cells), grid_values
            )

        def repeated_loss(coords, values):
            return lambda: nn.functional.mse_loss(module.forward_repeated(repeated), values)

        whole_signal = None
        if shared is not None:
            whole_signal = grid_loss
        elif repeated is not None:
            whole_signal = repeated_loss
        return signal.objective(
            module,
            generator,
            whole_signal=whole_signal,
            fitted={
                "empty_cells_": census.empty().cpu().numpy(),
                "grid_fast_path_": whole_signal is not None,
            },
        )

    def _shared_grid(self, module, coords) -> SharedGrid | None:
        return None if self.fast_path is False else module.shared_grid(coords)

    def _forward(self, module, coords):
        # Whole cells of a grid: every head at each shared position (the paper's fast
        # path); any other regular grid (another resolution, a chunk cutting cells):
        # the body once per distinct position; scattered points: the general path.
        shared = self._shared_grid(module, coords)
        if shared is not None:
            out = coords.new_empty((coords.shape[0], module.heads.n_outputs))
            grid_out = module.forward_grid(shared.template, shared.cells)
            out[shared.index.t().reshape(-1)] = grid_out.reshape(-1, grid_out.shape[-1])
            return out
        repeated = None if self.fast_path is False else module.repeated_positions(coords)
        if repeated is not None:
            return module.forward_repeated(repeated)
        return module(coords)

    def _count_flops(self, coords):
        """What ``predict`` computes, chunk by chunk (``predict_batch_size``)."""
        module = self.module_
        total = 0
        for start in range(0, coords.shape[0], self.predict_batch_size):
            chunk = torch.as_tensor(
                coords[start : start + self.predict_batch_size],
                device=module.heads.weight.device,
            )
            shared = self._shared_grid(module, chunk)
            repeated = None
            if shared is None and self.fast_path is not False:
                repeated = module.repeated_positions(chunk)
            if shared is not None:
                total += module.grid_flops(shared.template.shape[0], shared.cells.numel())
            elif repeated is not None:
                total += module.repeated_flops(repeated)
            else:
                total += module.flops(chunk.shape[0], chunk)
        return total

    @property
    def n_heads_(self) -> int:
        """Number of heads (cells) of the fitted model."""
        return self.module_.n_heads


MultiHeadReLU.__doc__ = MultiHeadReLU.__doc__.replace(
    "%(blend_width)s", blend_width_doc("multihead")
)
