"""What users pick instead of an MLP: an interpolated grid, and a hash grid.

- :class:`Grid`: learnable values on a regular lattice, read by linear or cubic
  interpolation, with optional total-variation regularisation: the baseline of Kim &
  Fridovich-Keil, "Grids Often Outperform Implicit Neural Representations" (NeurIPS
  2025).
- :class:`HashGrid`: the multiresolution hash encoding and small ReLU MLP of Müller,
  Evans, Schied, Keller, "Instant Neural Graphics Primitives with a Multiresolution
  Hash Encoding" (SIGGRAPH 2022), with the paper's defaults.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch

from .._core.registry import register
from .._core.sample_layout import samples_along_axes, samples_per_axis
from .._core.validation import Interval, StrOptions
from ..base import BaseINR, common_params
from ..nn.encodings import HASH_PRIMES, MAX_CUBIC_DIMS, ORDERS, DenseGrid, HashEncoding
from ..nn.layers import EncodedMLP

__all__ = ["Grid", "HashGrid", "HashGridNet"]


def _per_axis(value, n_dims: int, name: str) -> tuple[int, ...]:
    points = (value,) * n_dims if isinstance(value, Integral) else tuple(value)
    if len(points) != n_dims:
        raise ValueError(
            f"{name}={value!r} has {len(points)} entries, but X has {n_dims} coordinate "
            "dimensions; give one entry per dimension or an int."
        )
    return tuple(int(p) for p in points)


def budget_resolution(samples: list[int], n_values: int) -> tuple[int, ...]:
    """Lattice points per axis, in the samples' proportions, whose product is at most
    ``n_values`` (points x outputs = the parameter budget)."""
    factor = (n_values / math.prod(samples)) ** (1 / len(samples))
    return tuple(max(math.floor(n * factor + 1e-9), 1) for n in samples)


@register
class Grid(BaseINR):
    """Learnable grid of values over the domain, read by interpolation.

    Parameters
    ----------
    resolution : int, sequence of int or None, default=None
        Lattice points per axis (an int: the same on every axis), the first and last on
        the domain's edges. None: set by ``n_params``, or the samples along each axis
        when both are None (one lattice point per sample of a full grid; at least 2).
    n_params : int or None, default=None
        A parameter budget: the largest lattice in the samples' proportions with at
        most this many values (points x channels). Give ``resolution`` or ``n_params``,
        not both.
    interpolation : {"linear", "cubic"}, default="linear"
        Multilinear (``2 ** n_dims`` values per point, any dimensionality) or Keys'
        cubic convolution (``4 ** n_dims``, at most 3-D).
    tv_weight : float, default=1e-3
        Weight of the total-variation penalty: the mean squared difference between
        neighbouring lattice points, summed over axes (Plenoxels' form, which the grid
        paper's baseline uses). It is what fills lattice points no sample reaches; the
        default keeps a dense fit close to exact. (measured:
        ``docs/estimators/grids.md``, "Why the defaults").
    learning_rate : float, default=0.05
        Adam's step size. Each value is moved by its own samples only, so the step can
        be large: at 0.05 a 256 x 256 image fits in a few hundred steps.
    max_iter : int, default=500
        Number of optimizer steps.
    %(common_parameters)s

    Attributes
    ----------
    module_ : DenseGrid
        The trained lattice (``module_.values``).
    resolution_ : tuple of int
        The lattice points per axis.
    n_params_ : int
        Trainable parameters (points x channels).
    %(common_attributes)s

    See Also
    --------
    HashGrid : Many resolutions in hash tables, decoded by a small MLP.

    Notes
    -----
    With ``resolution`` equal to the samples of a full grid, the lattice stores the
    signal itself and prediction between samples is plain linear (or cubic)
    interpolation: the baseline every representation should beat off the grid.

    References
    ----------
    .. [1] N. Kim, S. Fridovich-Keil. "Grids Often Outperform Implicit Neural
       Representations". NeurIPS 2025.

    Examples
    --------
    >>> import numpy as np
    >>> from skinr import Grid
    >>> from skinr.signals import to_coords
    >>> X, y = to_coords(np.sin(np.linspace(0, 6, 64)))
    >>> model = Grid(n_params=32, max_iter=200, random_state=0).fit(X, y)
    >>> model.resolution_
    (32,)
    """

    _parameter_constraints = {
        **BaseINR._parameter_constraints,
        "resolution": [Interval(Integral, 2, None, closed="left"), "array-like", None],
        "n_params": [Interval(Integral, 1, None, closed="left"), None],
        "interpolation": [StrOptions(set(ORDERS))],
        "tv_weight": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        resolution=None,
        *,
        n_params=None,
        interpolation="linear",
        tv_weight=1e-3,
        learning_rate=0.05,
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
        self.resolution = resolution
        self.n_params = n_params
        self.interpolation = interpolation
        self.tv_weight = tv_weight
        super().__init__(**common_params(locals()))

    def _structure(self, X, n_outputs):
        n_dims = X.shape[1]
        if self.interpolation == "cubic" and n_dims > MAX_CUBIC_DIMS:
            raise ValueError(
                f"interpolation='cubic' reads 4**n_dims = {4**n_dims} values per point; "
                f"it serves at most {MAX_CUBIC_DIMS}-D signals and X has {n_dims} "
                "dimensions. Use interpolation='linear'."
            )
        if self.resolution is not None and self.n_params is not None:
            raise ValueError("Give Grid a resolution or an n_params budget, not both.")
        if self.resolution is not None:
            resolution = _per_axis(self.resolution, n_dims, "resolution")
        else:
            samples = samples_along_axes(X, self.predict_batch_size)
            if self.n_params is None:
                # Scattered points count as a grid of n ** (1 / n_dims) per axis (see
                # samples_along_axes), which in many dimensions rounds below 2.
                resolution = tuple(max(n, 2) for n in samples)
            else:
                resolution = budget_resolution(samples, self.n_params // n_outputs)
        if min(resolution) < 2:
            what = (
                f"n_params={self.n_params} buys a {'x'.join(map(str, resolution))} "
                f"lattice of {n_outputs} channel(s)"
                if self.resolution is None and self.n_params is not None
                else f"the lattice would be {'x'.join(map(str, resolution))}"
            )
            raise ValueError(
                f"A grid needs at least 2 points per axis to interpolate; {what}. "
                "Raise the budget or the resolution."
            )
        return {"resolution_": resolution}

    def _build_module(self, n_dims, n_outputs, generator):
        return DenseGrid(self.resolution_, n_outputs, self.interpolation)

    def _objective(self, module, signal, generator):
        if self.tv_weight == 0:
            return signal.objective(module, generator)
        weight = float(self.tv_weight)
        return signal.objective(
            module, generator, penalty=lambda: weight * module.total_variation()
        )


class HashGridNet(EncodedMLP):
    """Hash encoding, then a ReLU MLP: ``(n_samples, n_dims) -> (n_samples, n_outputs)``.

    ``depth`` counts the ``width x width`` layers after the first ``features -> width``
    one (``depth=1``: Instant-NGP's two hidden layers).
    """

    def __init__(
        self,
        n_dims: int,
        n_outputs: int,
        *,
        width: int = 64,
        depth: int = 1,
        generator: torch.Generator | None = None,
        **encoding,
    ) -> None:
        features = HashEncoding(n_dims, generator=generator, **encoding)
        super().__init__(features, n_outputs, width, depth, generator=generator)


@register
class HashGrid(BaseINR):
    """Multiresolution hash encoding with a small ReLU MLP (Instant-NGP).

    Parameters
    ----------
    n_levels : int, default=16
        Resolutions (the paper's L), at most 64: between ``base_resolution`` and
        ``finest_resolution`` more levels only repeat resolutions.
    features_per_level : int, default=2
        Values per vertex (F).
    log2_table_size : int, default=19
        Entries per level's table, as a power of two (T = 2**19, the paper's NeRF
        setting). Levels whose lattice fits are stored densely, so small signals use
        less.
    base_resolution : int, default=16
        Cells per axis of the coarsest level (N_min).
    finest_resolution : int or "auto", default="auto"
        Cells per axis of the finest level (N_max): "auto" is the intervals between the
        samples along the signal's longest axis (samples - 1, at least
        ``base_resolution``), so that level's vertices sit on the samples and it
        interpolates between them linearly (at the samples' count the vertices fall a
        quarter cell off the samples). (measured: ``docs/estimators/grids.md``, "Why the
        defaults").
    width : int, default=64
        Features of the MLP's hidden layers.
    depth : int, default=1
        ``width x width`` layers after the first (1: the paper's two hidden layers).
    learning_rate : float, default=0.01
        Adam's step size (the paper's; with its betas (0.9, 0.99) and eps 1e-15).
    max_iter : int, default=1000
        Number of optimizer steps.
    %(common_parameters)s

    Attributes
    ----------
    module_ : HashGridNet
        The trained torch module (``module_.encoding.table`` holds every level).
    finest_resolution_ : int
        The finest level's cells per axis.
    n_params_ : int
        Trainable parameters (tables and MLP).
    %(common_attributes)s

    See Also
    --------
    Grid : One dense lattice, no MLP.

    Notes
    -----
    Level ``l`` has ``floor(N_min b**l)`` cells per axis, ``b`` spacing the levels
    geometrically up to N_max (paper Eq. 2-3); a level with more vertices than T
    entries indexes its table by XOR-ing the vertex coordinates times large primes
    (Eq. 4), leaving the MLP to resolve the collisions. The paper's L2 weight decay of
    1e-6 on the MLP is not applied.

    References
    ----------
    .. [1] T. Müller, A. Evans, C. Schied, A. Keller. "Instant Neural Graphics
       Primitives with a Multiresolution Hash Encoding". ACM TOG (SIGGRAPH) 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skinr import HashGrid
    >>> from skinr.signals import to_coords
    >>> X, y = to_coords(np.sin(np.linspace(0, 6, 64)))
    >>> model = HashGrid(n_levels=4, log2_table_size=8, base_resolution=4,
    ...                  max_iter=100, random_state=0).fit(X, y)
    >>> model.finest_resolution_
    63
    """

    _adam_options = {"betas": (0.9, 0.99), "eps": 1e-15}

    _parameter_constraints = {
        **BaseINR._parameter_constraints,
        # Bounded: each level is a table built in Python, and a model file names it.
        "n_levels": [Interval(Integral, 1, 64, closed="both")],
        "features_per_level": [Interval(Integral, 1, None, closed="left")],
        "log2_table_size": [Interval(Integral, 1, 30, closed="both")],
        "base_resolution": [Interval(Integral, 1, None, closed="left")],
        "finest_resolution": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "width": [Interval(Integral, 1, None, closed="left")],
        "depth": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_levels=16,
        features_per_level=2,
        *,
        log2_table_size=19,
        base_resolution=16,
        finest_resolution="auto",
        width=64,
        depth=1,
        learning_rate=1e-2,
        max_iter=1000,
        max_time=None,
        batch_size=None,
        # Measured (docs/estimators/grids.md): a constant 1e-2 reaches ~78 dB on camera
        # 256 at step 420 and then oscillates (44 dB at step 1000); cosine annealing
        # ends at 92 dB.
        lr_schedule="cosine",
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
        self.n_levels = n_levels
        self.features_per_level = features_per_level
        self.log2_table_size = log2_table_size
        self.base_resolution = base_resolution
        self.finest_resolution = finest_resolution
        self.width = width
        self.depth = depth
        super().__init__(**common_params(locals()))

    def _structure(self, X, n_outputs):
        n_dims = X.shape[1]
        if n_dims > len(HASH_PRIMES):
            raise ValueError(
                f"HashGrid hashes at most {len(HASH_PRIMES)} coordinate dimensions; X has {n_dims}."
            )
        coarsest = (self.base_resolution + 1) ** n_dims
        if 2**self.log2_table_size < coarsest:
            raise ValueError(
                f"log2_table_size={self.log2_table_size} gives tables of "
                f"{2**self.log2_table_size} entries, fewer than the coarsest level's "
                f"{coarsest} vertices (base_resolution={self.base_resolution} in "
                f"{n_dims}-D): every level would collide. Raise log2_table_size to "
                f"{math.ceil(math.log2(coarsest))} or lower base_resolution."
            )
        if self.finest_resolution == "auto":
            # The domain maps the first and last sample onto the lattice's end vertices.
            intervals = samples_per_axis(X, self.predict_batch_size) - 1
            finest = max(intervals, self.base_resolution)
        elif self.finest_resolution < self.base_resolution:
            raise ValueError(
                f"finest_resolution={self.finest_resolution} is below "
                f"base_resolution={self.base_resolution}."
            )
        else:
            finest = int(self.finest_resolution)
        return {"finest_resolution_": finest}

    def _build_module(self, n_dims, n_outputs, generator):
        return HashGridNet(
            n_dims,
            n_outputs,
            width=self.width,
            depth=self.depth,
            generator=generator,
            n_levels=self.n_levels,
            features_per_level=self.features_per_level,
            log2_table_size=self.log2_table_size,
            base_resolution=self.base_resolution,
            finest_resolution=self.finest_resolution_,
        )
