"""Fourier-feature MLP: a ReLU network on random Fourier features or positional encoding.

Tancik, Srinivasan, Mildenhall, Fridovich-Keil, Raghavan, Singhal, Ramamoorthi,
Barron, Ng, "Fourier Features Let Networks Learn High Frequency Functions in Low
Dimensional Domains", NeurIPS 2020, https://arxiv.org/abs/2006.10739.

The encoding sees coordinates on [0, 1] (the paper's unit domain, so ``scale`` means
what it means there): Gaussian features ``[cos 2 pi B u, sin 2 pi B u]`` with
``B ~ N(0, scale^2)``, or the log-linear positional encoding with frequencies up to
``scale``. ReLU layers use He initialisation with zero biases; the output is linear.
"""

from __future__ import annotations

from numbers import Integral, Real

import torch

from .._core.registry import register
from .._core.sample_layout import samples_per_axis
from .._core.validation import Interval, StrOptions
from ..base import BaseINR, common_params
from ..nn.layers import EncodedMLP, FourierFeatures, PositionalEncoding

__all__ = ["ENCODINGS", "FourierFeatureMLP", "FourierFeatureNet"]

ENCODINGS = {"gaussian": FourierFeatures, "positional": PositionalEncoding}

# scale="auto" per sample along the longest axis (benchmarks/offgrid.py): the Gaussian
# features' spread at 1/32 of the samples; positional frequencies up to half Nyquist.
AUTO_SCALE_PER_SAMPLE = {"gaussian": 1 / 32, "positional": 1 / 4}
MIN_AUTO_SCALE = 0.5


class FourierFeatureNet(EncodedMLP):
    """Encoding, then a ReLU MLP: ``(n_samples, n_dims) -> (n_samples, n_outputs)``.

    ``depth`` counts the ``width x width`` hidden layers after the first
    ``features -> width`` layer.
    """

    def __init__(
        self,
        n_dims: int,
        n_outputs: int,
        width: int = 256,
        depth: int = 3,
        *,
        n_frequencies: int = 256,
        scale: float = 10.0,
        encoding: str = "gaussian",
        generator: torch.Generator | None = None,
    ) -> None:
        features = ENCODINGS[encoding](n_dims, n_frequencies, scale, generator)
        super().__init__(features, n_outputs, width, depth, generator=generator)


@register
class FourierFeatureMLP(BaseINR):
    """ReLU MLP on Fourier features (Gaussian random features or positional encoding).

    Parameters
    ----------
    width : int, default=256
        Features of every hidden layer.
    depth : int, default=3
        Number of ``width x width`` hidden layers after the first layer.
    n_frequencies : int, default=256
        Gaussian: rows of ``B`` (the encoding has ``2 * n_frequencies`` features).
        Positional: frequencies per coordinate (``2 * n_dims * n_frequencies`` features).
    scale : float or "auto", default="auto"
        Gaussian: standard deviation of ``B``. Positional: the highest frequency.
        Frequencies are in cycles per unit of the [0, 1]-mapped domain. "auto" scales
        with the sample density: Gaussian ``n / 32`` for ``n`` samples along the longest
        axis (8 for a 256-pixel image, the paper's 10 for its 256 training pixels),
        positional ``n / 4`` (half the Nyquist frequency). A fixed scale too high for
        the samples fills the gaps between them with noise. (measured:
        ``docs/estimators/fourier.md``, "Why the defaults").
    encoding : {"gaussian", "positional"}, default="gaussian"
        The input mapping.
    learning_rate : float, default=1e-3
        Adam's step size.
    max_iter : int, default=1000
        Number of optimizer steps.
    %(common_parameters)s

    Attributes
    ----------
    module_ : FourierFeatureNet
        The trained torch module (``module_.encoding.frequencies`` holds ``B``).
    scale_ : float
        The ``scale`` used: the parameter, or the one "auto" chose for the data.
    n_params_ : int
        Trainable parameters (``B`` is fixed and not counted).
    %(common_attributes)s

    See Also
    --------
    SIREN : Sine-activated MLP, the other classic baseline.

    Notes
    -----
    The paper's mapping is ``gamma(v) = [cos(2 pi B v), sin(2 pi B v)]`` (Eq. 5);
    ``scale`` trades under-fitting (small) against noisy interpolation (large).

    References
    ----------
    .. [1] M. Tancik, P. Srinivasan, B. Mildenhall, et al. "Fourier Features Let
       Networks Learn High Frequency Functions in Low Dimensional Domains".
       NeurIPS 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skinr import FourierFeatureMLP
    >>> from skinr.signals import to_coords
    >>> X, y = to_coords(np.sin(np.linspace(0, 6, 64)))
    >>> model = FourierFeatureMLP(width=32, depth=1, n_frequencies=16, max_iter=50,
    ...                           random_state=0).fit(X, y)
    >>> model.predict(X).shape
    (64,)
    """

    _parameter_constraints = {
        **BaseINR._parameter_constraints,
        "width": [Interval(Integral, 1, None, closed="left")],
        "depth": [Interval(Integral, 0, None, closed="left")],
        "n_frequencies": [Interval(Integral, 1, None, closed="left")],
        "scale": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "encoding": [StrOptions(set(ENCODINGS))],
    }

    def __init__(
        self,
        width=256,
        depth=3,
        *,
        n_frequencies=256,
        scale="auto",
        encoding="gaussian",
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
        self.n_frequencies = n_frequencies
        self.scale = scale
        self.encoding = encoding
        super().__init__(**common_params(locals()))

    def _structure(self, X, n_outputs):
        if self.scale != "auto":
            return {"scale_": float(self.scale)}
        samples = samples_per_axis(X, self.predict_batch_size)
        per_sample = AUTO_SCALE_PER_SAMPLE[self.encoding]
        return {"scale_": max(samples * per_sample, MIN_AUTO_SCALE)}

    def _build_module(self, n_dims, n_outputs, generator):
        return FourierFeatureNet(
            n_dims,
            n_outputs,
            self.width,
            self.depth,
            n_frequencies=self.n_frequencies,
            scale=self.scale_,
            encoding=self.encoding,
            generator=generator,
        )
