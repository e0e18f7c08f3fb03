"""LatentCodec: a coordinate network trained for its rate, written as a range-coded stream.

See :mod:`skinr.codec._latent_net` for the network and ``docs/estimators/codec.md``
for the design and its measured rate-distortion (``benchmarks/codec.py``).
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch

from .._core.registry import register
from .._core.sample_layout import samples_along_axes
from .._core.validation import Interval, StrOptions
from ..base import BaseINR, common_params
from ..nn.encodings import MAX_CUBIC_DIMS, ORDERS
from ._entropy import laplace_bits, laplace_scale, snap_laplace
from ._latent_net import LatentCodecNet, lattice_shapes
from ._latent_stream import latent_stream

__all__ = ["LatentCodec"]

# The entropy model reads 3**d / 2 neighbours per latent: signals of up to 3 dimensions
# (audio, images, videos, volumes) are what a codec serves.
MAX_CODEC_DIMS = 3
# Weight quantisation steps tried after training, as powers of two.
WEIGHT_STEP_EXPONENTS = tuple(range(-14, -2))
# The weight groups that each get one step (Cool-chic quantises weights and biases
# of each network apart).
WEIGHT_GROUPS = ("synthesis.weight", "synthesis.bias", "arm.weight", "arm.bias")


def grid_order(coords: torch.Tensor):
    """``(axes, order)`` when ``coords`` are every point of a regular grid once (any
    row order): the distinct values per axis, and the rows in row-major grid order;
    None otherwise."""
    axes = [torch.unique(coords[:, k]) for k in range(coords.shape[1])]
    if math.prod(len(a) for a in axes) != len(coords):
        return None
    flat = torch.zeros(len(coords), dtype=torch.long, device=coords.device)
    for axis, values in zip(axes, coords.T, strict=True):
        flat = flat * len(axis) + torch.searchsorted(axis, values.contiguous())
    if torch.unique(flat).numel() != len(coords):
        return None
    return tuple(axes), torch.argsort(flat)


@register
class LatentCodec(BaseINR):
    """Multi-resolution latent lattices, entropy-coded, decoded by a small MLP.

    A neural codec in the Cool-chic / C3 family, trained on distortion +
    ``rate_weight`` x rate, as a coordinate network: the decoded signal renders at any
    resolution. :func:`skinr.codec.encode` writes the fitted model as a byte stream
    (range-coded latents and quantised weights), :func:`skinr.codec.decode` reads it
    back; a fitted model predicts exactly what its stream decodes to.

    Parameters
    ----------
    rate_weight : float, default=1e-2
        The weight λ of the rate (bits per sample) against the mean squared error of
        the values scaled to [-1, 1]. Larger: fewer bits, lower quality. The rate a
        given λ buys depends on the signal: the default sits mid-table on the photos
        of ``docs/benchmarks/codec.md`` (``benchmarks/codec.py``).
    n_levels : int, default=7
        Latent lattices; level 0 has a point per sample (on a full grid, on the
        samples), each next about half as many per axis.
    width : int, default=32
        Features of the synthesis MLP's hidden layers.
    depth : int, default=2
        Hidden layers of the synthesis MLP.
    arm_width : int, default=16
        Features of the entropy model's two hidden layers.
    interpolation : {"auto", "cubic", "linear"}, default="auto"
        How a lattice is read between its points: "auto" is cubic for signals of up
        to 3 dimensions (4**n_dims taps per point) and linear above.
    noise_fraction : float, default=0.8
        Share of the steps trained with uniform noise in place of rounding; the rest
        round with a straight-through gradient (Cool-chic's two phases).
    learning_rate : float, default=0.01
        Adam's step size (Cool-chic's).
    max_iter : int, default=2000
        Number of optimizer steps.
    %(common_parameters)s

    Attributes
    ----------
    module_ : LatentCodecNet
        The trained network, its weights quantised to the steps of ``weight_steps_``
        and its latents rounded: exactly what the stream holds.
    lattice_shapes_ : list of tuple of int
        Points per axis of each latent lattice.
    interpolation_ : str
        The interpolation used ("cubic" or "linear").
    weight_steps_ : dict
        Weight group -> exponent ``e`` of its quantisation step ``2**e``, chosen after
        training for the least distortion + λ x rate.
    stream_bytes_ : int
        Bytes of the stream :func:`skinr.codec.encode` writes for this model.
    bits_per_sample_ : float
        ``8 * stream_bytes_ / n_samples`` (bits per pixel for an image).
    n_params_ : int
        Latents and weights.
    %(common_attributes)s

    See Also
    --------
    skinr.codec.encode : Any fitted estimator to bytes.

    Notes
    -----
    The entropy model predicts each latent's Laplace from its causal neighbours in
    its lattice and the latent at the same place one level coarser; the stream decodes
    level by level, each in wavefronts. The parameters handed to the range coder are
    snapped to a coarse grid, so that encoder and decoder agree even when their
    floating-point order differs.

    ``loss_curve_`` holds the training objective: the error plus λ x the rate.
    ``fit`` ends by quantising the weights: with ``early_stopping``, the held-out
    scores (``validation_scores_``) are those of the weights before quantisation.

    References
    ----------
    .. [1] T. Ladune, P. Philippe, F. Henry, G. Clare, T. Leguay. "COOL-CHIC:
       Coordinate-based Low Complexity Hierarchical Image Codec". ICCV 2023.
    .. [2] H. Kim, M. Bauer, L. Theis, J. R. Schwarz, E. Dupont. "C3: High-performance
       and low-complexity neural compression from a single image or video". CVPR 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from skinr.codec import LatentCodec
    >>> from skinr.signals import to_coords
    >>> X, y = to_coords(np.random.default_rng(0).random((16, 16)), pixel_centers=True)
    >>> model = LatentCodec(max_iter=20, random_state=0).fit(X, y)
    >>> model.stream_bytes_ > 0
    True
    """

    # skinr.meta.LearnedInit: one set of weights cannot serve several signals.
    _prior_refusal = "its latent lattices are sized by each signal, and quantised for it"

    _parameter_constraints = {
        **BaseINR._parameter_constraints,
        "rate_weight": [Interval(Real, 0, None, closed="left")],
        "n_levels": [Interval(Integral, 1, 16, closed="both")],
        "width": [Interval(Integral, 1, 1024, closed="both")],
        "depth": [Interval(Integral, 1, 16, closed="both")],
        "arm_width": [Interval(Integral, 1, 256, closed="both")],
        "interpolation": [StrOptions({"auto", *ORDERS})],
        "noise_fraction": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(
        self,
        rate_weight=1e-2,
        *,
        n_levels=7,
        width=32,
        depth=2,
        arm_width=16,
        interpolation="auto",
        noise_fraction=0.8,
        learning_rate=0.01,
        max_iter=2000,
        max_time=None,
        batch_size=None,
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
        self.rate_weight = rate_weight
        self.n_levels = n_levels
        self.width = width
        self.depth = depth
        self.arm_width = arm_width
        self.interpolation = interpolation
        self.noise_fraction = noise_fraction
        super().__init__(**common_params(locals()))

    def _doc_link_url_param_generator(self) -> dict:
        return {"page": "codec"}

    # ----------------------------------------------------------------- hooks
    def _structure(self, X, n_outputs):
        from ._entropy import _coder

        _coder()  # the range coder is an extra: missing, say so before training
        n_dims = X.shape[1]
        if n_dims > MAX_CODEC_DIMS:
            raise ValueError(
                f"LatentCodec compresses signals of at most {MAX_CODEC_DIMS} coordinate "
                f"dimensions (images, videos, volumes); X has {n_dims}."
            )
        if self.interpolation == "cubic" and n_dims > MAX_CUBIC_DIMS:
            raise ValueError(
                f"interpolation='cubic' serves at most {MAX_CUBIC_DIMS}-D signals and X has "
                f"{n_dims} dimensions. Use interpolation='linear'."
            )
        samples = tuple(max(n, 2) for n in samples_along_axes(X, self.predict_batch_size))
        order = self.interpolation
        if order == "auto":
            order = "cubic" if n_dims <= MAX_CUBIC_DIMS else "linear"
        return {
            "lattice_shapes_": lattice_shapes(samples, self.n_levels),
            "interpolation_": order,
        }

    def _build_module(self, n_dims, n_outputs, generator):
        return LatentCodecNet(
            self.lattice_shapes_,
            n_outputs,
            width=self.width,
            depth=self.depth,
            arm_width=self.arm_width,
            order=self.interpolation_,
            generator=generator,
        )

    def _objective(self, module, signal, generator):
        module.seed = int(torch.randint(2**62, (1,), generator=generator))
        weight = float(self.rate_weight) / signal.n_samples

        def rate():
            return weight * module.rate_bits()

        def whole_signal(coords, values):
            found = grid_order(coords)
            if found is None:
                return None
            axes, order = found
            ordered = values[order]
            return lambda: torch.nn.functional.mse_loss(module.on_grid(axes), ordered)

        objective = signal.objective(module, generator, whole_signal=whole_signal, penalty=rate)
        switch, inner = math.ceil(self.noise_fraction * self.max_iter), objective.loss

        def loss(batch):
            module.quantizer = "noise" if int(module.step) < switch else "round"
            value = inner(batch)
            module.step += 1
            return value

        objective.loss = loss
        return objective

    def _count_flops(self, coords):
        return self.module_.flops(coords.shape[0])

    # ------------------------------------------------------------------- fit
    def _complete_fit(self) -> None:
        """Round the latents, pick each weight group's quantisation step for the least
        distortion + λ x rate, and measure the stream.

        The distortion is the change quantisation makes to the signal on the level-0
        lattice (the training grid for a full grid), added to the fit's own error:
        it needs neither the samples (a big signal is not copied) nor a signal-domain
        target (a fit through an operator has measurements instead)."""
        module = self.module_.eval()
        # The stream stores the frame in float32: the model predicts from those values.
        self.domain_ = np.asarray(self.domain_, dtype=np.float32).astype(np.float64)
        if self.footprint_ is not None:
            self.footprint_ = np.asarray(self.footprint_, dtype=np.float32).astype(np.float64)
        self.y_offset_, self.y_scale_, self.data_range_ = (
            float(np.float32(v)) for v in (self.y_offset_, self.y_scale_, self.data_range_)
        )
        n_samples = math.prod(self.grid_shape_)
        latent_device = module.latents[0].device
        axes = tuple(torch.linspace(-1, 1, n, device=latent_device) for n in module.shapes[0])
        with torch.no_grad():
            for z in module.latents:
                z.copy_(torch.round(z))
            reference = module.on_grid(axes)

            def distortion():
                return float(torch.nn.functional.mse_loss(module.on_grid(axes), reference))

            floats = {name: p.detach().clone() for name, p in module.named_parameters()}
            steps = {}
            for group in WEIGHT_GROUPS:
                net, kind = group.split(".")
                params = [
                    (name, p)
                    for name, p in module.named_parameters()
                    if name.startswith(net + ".") and name.endswith(kind)
                ]
                best = None
                for exponent in WEIGHT_STEP_EXPONENTS:
                    bits = 0.0
                    for name, p in params:
                        symbols = torch.round(floats[name] / 2.0**exponent)
                        p.copy_(symbols * 2.0**exponent)
                        bits += weight_bits(symbols.cpu().numpy())
                    if net == "arm":
                        bits += float(module.rate_bits())
                        cost = bits * self.rate_weight / n_samples
                    else:
                        cost = distortion() + bits * self.rate_weight / n_samples
                    if best is None or cost < best[0]:
                        best = (cost, exponent)
                steps[group] = best[1]
                for name, p in params:
                    p.copy_(torch.round(floats[name] / 2.0 ** best[1]) * 2.0 ** best[1])
        module._grid_cache = {}
        self.weight_steps_ = steps
        self.n_params_ = sum(p.numel() for p in module.parameters())
        self.stream_bytes_ = len(latent_stream(self))
        self.bits_per_sample_ = 8 * self.stream_bytes_ / n_samples


def weight_bits(symbols: np.ndarray) -> float:
    """Bits of a tensor's quantised weights under its own Laplace (the stream's model)."""
    mean, scale = snap_laplace(0.0, laplace_scale(symbols))
    return laplace_bits(symbols.reshape(-1), mean, scale)
