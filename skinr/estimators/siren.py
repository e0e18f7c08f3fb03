"""SIREN: implicit neural representations with periodic activation functions.

Sitzmann, Martel, Bergman, Lindell, Wetzstein, "Implicit Neural Representations with
Periodic Activation Functions", NeurIPS 2020, https://arxiv.org/abs/2006.09661.

Follows the official code (vsitzmann/siren): every hidden layer is
``sin(omega_0 * (W x + b))`` with omega_0 = 30 in the first and hidden layers, the
first layer's weights U(±1/n_dims), later weights U(±sqrt(6/width)/omega_0), biases
at torch's default U(±1/sqrt(fan_in)), and a linear output layer.
"""

from __future__ import annotations

from numbers import Integral, Real

import torch

from .._core.registry import register
from .._core.sample_layout import samples_per_axis, scaled_to_density
from .._core.validation import Interval, StrOptions
from ..base import BaseINR, common_params
from ..nn.layers import ActivatedMLP, Linear, SineLinear

__all__ = ["SIREN", "SirenNet", "auto_first_omega_0", "resolved_omegas"]

DEFAULT_OMEGA_0 = 30.0
#: Samples along the longest axis from which SIREN's "auto" omegas are the paper's 30.
SIREN_FULL_SAMPLES = 60


def auto_first_omega_0(samples: int, full_samples: int = SIREN_FULL_SAMPLES) -> float:
    """The paper's 30 from ``full_samples`` samples along the signal's longest axis up,
    in proportion below (for SIREN's 60, half the samples), and at least 1.

    A first layer that oscillates faster than the samples leaves the network free to
    fill the gaps between them with noise (``benchmarks/offgrid.py``). SIREN's hidden
    layers take the same cap: their omega_0 scales how fast training sharpens them.
    """
    return max(scaled_to_density(DEFAULT_OMEGA_0, samples, full_samples), 1.0)


def resolved_omegas(
    factors: dict, X, chunk_size: int, full_samples: int = SIREN_FULL_SAMPLES
) -> dict[str, float]:
    """Resolve ``factors`` (fitted-attribute name -> parameter value): a number is kept,
    "auto" becomes :func:`auto_first_omega_0` of the samples along ``X``'s longest axis,
    the rule every sine network's "auto" frequencies share (``full_samples`` sets where
    an activation reaches its paper's 30)."""
    if "auto" in factors.values():
        cap = auto_first_omega_0(samples_per_axis(X, chunk_size), full_samples)
        factors = {name: cap if value == "auto" else value for name, value in factors.items()}
    return {name: float(value) for name, value in factors.items()}


class SirenNet(ActivatedMLP):
    """Sine MLP ``(n_samples, n_dims) -> (n_samples, n_outputs)``.

    ``depth`` counts the ``width x width`` hidden layers, so ``depth=3`` is SIREN's
    five linear layers: ``n_dims -> width``, three ``width -> width``, ``width -> n_outputs``.
    """

    def __init__(
        self,
        n_dims: int,
        n_outputs: int,
        width: int = 256,
        depth: int = 3,
        *,
        first_omega_0: float = DEFAULT_OMEGA_0,
        hidden_omega_0: float = DEFAULT_OMEGA_0,
        generator: torch.Generator | None = None,
    ) -> None:
        def layer(n_in: int, n_out: int, is_first: bool) -> SineLinear:
            omega_0 = first_omega_0 if is_first else hidden_omega_0
            return SineLinear(n_in, n_out, omega_0=omega_0, is_first=is_first, generator=generator)

        def readout(n_in: int, n_out: int) -> Linear:
            return Linear(n_in, n_out, init="siren", omega_0=hidden_omega_0, generator=generator)

        super().__init__(n_dims, n_outputs, width, depth, layer=layer, readout=readout)


@register
class SIREN(BaseINR):
    """Sine-activated MLP (SIREN), the reference implicit neural representation.

    Parameters
    ----------
    width : int, default=256
        Features of every hidden layer.
    depth : int, default=3
        Number of ``width x width`` hidden layers (the paper's 5-layer network has 3).
    first_omega_0 : float or "auto", default="auto"
        Frequency factor of the first layer. "auto" is the paper's 30 for signals with
        at least 60 samples along their longest axis and half the samples below that (16
        for a 32 x 32 image): at 30, a network fitted on few samples fills the gaps
        between them with noise. Raise it for dense 1-D signals (SIREN uses 3000 for
        audio on [-1, 1]). (measured: ``docs/estimators/siren.md``, "Why the defaults").
    hidden_omega_0 : float or "auto", default="auto"
        Frequency factor of the hidden layers. "auto" takes the first layer's cap: the
        paper's 30 from 60 samples along the longest axis, half the samples below. The
        hidden weights are initialised divided by it, so it mainly scales how fast
        training moves the layers' frequencies; on few samples 30 lets them outrun the
        samples. (measured: ``docs/estimators/siren.md``, "Why the defaults").
    learning_rate : float, default=3e-4
        Adam's step size. The paper uses 1e-4; 3e-4 fits better at a fixed number of
        steps and stays stable, 1e-3 spikes. (measured: ``docs/estimators/siren.md``,
        "Why the defaults").
    max_iter : int, default=1000
        Number of optimizer steps.
    %(common_parameters)s

    Attributes
    ----------
    module_ : SirenNet
        The trained torch module.
    first_omega_0_ : float
        The first layer's frequency factor: ``first_omega_0``, or what "auto" chose.
    hidden_omega_0_ : float
        The hidden layers' frequency factor: ``hidden_omega_0``, or what "auto" chose.
    n_params_ : int
        Trainable parameters.
    %(common_attributes)s

    See Also
    --------
    FourierFeatureMLP : A ReLU MLP on Fourier features, the other classic baseline.

    Notes
    -----
    The hidden layers compute ``sin(omega_0 (W x + b))`` (paper Sec. 3.2); the
    initialisation keeps the pre-activations of every layer distributed alike, which
    is what lets SIREN train deep.

    References
    ----------
    .. [1] V. Sitzmann, J. Martel, A. Bergman, D. Lindell, G. Wetzstein. "Implicit
       Neural Representations with Periodic Activation Functions". NeurIPS 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skinr import SIREN
    >>> from skinr.signals import to_coords
    >>> X, y = to_coords(np.sin(np.linspace(0, 6, 64)))
    >>> model = SIREN(width=32, depth=2, max_iter=50, random_state=0).fit(X, y)
    >>> model.predict(X).shape
    (64,)
    """

    _compile_speeds_up_cpu = True

    _parameter_constraints = {
        **BaseINR._parameter_constraints,
        "width": [Interval(Integral, 1, None, closed="left")],
        "depth": [Interval(Integral, 0, None, closed="left")],
        "first_omega_0": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "hidden_omega_0": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
    }

    def __init__(
        self,
        width=256,
        depth=3,
        *,
        first_omega_0="auto",
        hidden_omega_0="auto",
        learning_rate=3e-4,
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
        self.first_omega_0 = first_omega_0
        self.hidden_omega_0 = hidden_omega_0
        super().__init__(**common_params(locals()))

    def _structure(self, X, n_outputs):
        factors = {"first_omega_0_": self.first_omega_0, "hidden_omega_0_": self.hidden_omega_0}
        return resolved_omegas(factors, X, self.predict_batch_size)

    def _build_module(self, n_dims, n_outputs, generator):
        return SirenNet(
            n_dims,
            n_outputs,
            self.width,
            self.depth,
            first_omega_0=self.first_omega_0_,
            hidden_omega_0=self.hidden_omega_0_,
            generator=generator,
        )
