"""The activation functions recent INR papers compare against: FINER, Gauss and WIRE.

Each is the MLP of :class:`skinr.nn.layers.ActivatedMLP` with its paper's activated layer,
initialisation and training settings, as in the official code:

- FINER (Liu et al., CVPR 2024, liuzhen0212/FINER): ``sin(omega (|z| + 1) z)``,
  SIREN's initialisation, omega 30, Adam 5e-4;
- Gauss (Ramasinghe & Lucey, ECCV 2022; the form WIRE's and FINER's code compare
  with): ``exp(-(s z)^2)``, s = 30, torch's initialisation, Adam 5e-3;
- WIRE (Saragadam et al., CVPR 2023, vishwa91/wire): the complex Gabor wavelet
  ``exp(i omega z - |s z|^2)``, omega 20, s 10, complex hidden layers of
  ``width / sqrt(2)`` features (a complex number is two reals), the real part of a
  complex readout, Adam 1e-3 (the official 5e-3 stalls on our images; see ``WIRE``).

All three train with the official scripts' learning rate decaying to a tenth over the
fit (``lr_schedule="exponential"``) and 3 hidden layers of 256.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

from .._core.registry import register
from .._core.sample_layout import samples_per_axis, scaled_to_density
from .._core.validation import Interval, StrOptions
from ..base import BaseINR, common_params
from ..nn.layers import (
    ActivatedMLP,
    ComplexGaborLinear,
    ComplexLinear,
    GaussianLinear,
    Linear,
    VariablePeriodicLinear,
)
from .siren import resolved_omegas

__all__ = ["FINER", "WIRE", "GaussINR"]


class _ActivationINR(BaseINR):
    """What the three share: width, depth and the official training settings."""

    _parameter_constraints = {
        **BaseINR._parameter_constraints,
        "width": [Interval(Integral, 1, None, closed="left")],
        "depth": [Interval(Integral, 0, None, closed="left")],
    }


# FINER's sin(omega (|z| + 1) z) runs at omega (2 |z| + 1) for a pre-activation z: about
# twice SIREN's frequency over the activation's range, so its "auto" omegas reach the
# paper's 30 at twice SIREN's samples (120 along the longest axis) and are half SIREN's
# below. At SIREN's cap FINER memorised 64 x 64 samples and rendered a texture between
# them (every 2nd pixel held out: camera 22.97 dB, bilinear 24.54; at 15, 24.36).
FINER_FULL_SAMPLES = 120


@register
class FINER(_ActivationINR):
    """MLP with FINER's variable-periodic activation ``sin(omega_0 (|z| + 1) z)``.

    Parameters
    ----------
    width : int, default=256
        Features of every hidden layer.
    depth : int, default=3
        Number of ``width x width`` hidden layers (the official scripts' 3).
    first_omega_0 : float or "auto", default="auto"
        Frequency factor of the first layer: "auto" is the paper's 30 from 120 samples
        along the signal's longest axis up and a quarter of the samples below (a first
        layer faster than the samples fills the gaps between them with noise). That is
        half :class:`SIREN`'s cap: FINER's activation runs at ``omega_0 (2 |z| + 1)``,
        about twice a sine's frequency.
    hidden_omega_0 : float or "auto", default="auto"
        Frequency factor of the hidden layers: "auto" takes the first layer's cap.
        (measured: ``docs/estimators/activations.md``, "Why the defaults").
    first_bias_scale : float or None, default=None
        The first layer's bias is drawn from U(±first_bias_scale): the paper's wider
        initialisation, which moves the neurons onto the activation's faster periods.
        None keeps torch's U(±1/sqrt(n_dims)), the official scripts' default.
    learning_rate : float, default=5e-4
        Adam's step size (the official image script's).
    max_iter : int, default=1000
        Number of optimizer steps. The official scripts decay the learning rate to a
        tenth over the fit, so ``lr_schedule`` defaults to "exponential" here.
    %(common_parameters)s

    Attributes
    ----------
    module_ : ActivatedMLP
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
    SIREN : The sine MLP FINER generalises (``|z| + 1`` replaced by 1).

    Notes
    -----
    The factor ``|z| + 1`` makes each neuron's period shrink away from zero, so the
    magnitude of the pre-activation selects its frequency; the bias initialisation
    sets which frequencies the network starts with (paper Sec. 3).

    References
    ----------
    .. [1] Z. Liu, H. Zhu, Q. Zhang, J. Fu, W. Deng, Z. Ma, Y. Guo, X. Cao. "FINER:
       Flexible Spectral-bias Tuning in Implicit NEural Representation by
       Variable-periodic Activation Functions". CVPR 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from skinr import FINER
    >>> from skinr.signals import to_coords
    >>> X, y = to_coords(np.sin(np.linspace(0, 6, 64)))
    >>> model = FINER(width=32, depth=2, max_iter=50, random_state=0).fit(X, y)
    >>> model.predict(X).shape
    (64,)
    """

    _parameter_constraints = {
        **_ActivationINR._parameter_constraints,
        "first_omega_0": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "hidden_omega_0": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "first_bias_scale": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(
        self,
        width=256,
        depth=3,
        *,
        first_omega_0="auto",
        hidden_omega_0="auto",
        first_bias_scale=None,
        learning_rate=5e-4,
        max_iter=1000,
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
        self.width = width
        self.depth = depth
        self.first_omega_0 = first_omega_0
        self.hidden_omega_0 = hidden_omega_0
        self.first_bias_scale = first_bias_scale
        super().__init__(**common_params(locals()))

    def _structure(self, X, n_outputs):
        factors = {"first_omega_0_": self.first_omega_0, "hidden_omega_0_": self.hidden_omega_0}
        return resolved_omegas(factors, X, self.predict_batch_size, FINER_FULL_SAMPLES)

    def _build_module(self, n_dims, n_outputs, generator):
        first, bias_scale = self.first_omega_0_, self.first_bias_scale
        hidden = self.hidden_omega_0_

        def layer(n_in, n_out, is_first):
            return VariablePeriodicLinear(
                n_in,
                n_out,
                omega_0=first if is_first else hidden,
                is_first=is_first,
                bias_scale=bias_scale if is_first else None,
                generator=generator,
            )

        def readout(n_in, n_out):
            return Linear(n_in, n_out, init="siren", omega_0=hidden, generator=generator)

        return ActivatedMLP(n_dims, n_outputs, self.width, self.depth, layer=layer, readout=readout)


# "auto" widths of Gaussian and Gabor activations: the official values hold from these
# samples along the longest axis up, and shrink in proportion below (a 32-pixel side
# gets a tenth of them, ``samples / 10``). At the official values a 32 x 32 image is memorised and
# rendered as noise between its samples (4x: GaussINR 12.7 dB, WIRE 10.1, bicubic 23.3;
# at the scaled values 23.8 and 23.4; benchmarks/offgrid.py, docs/estimators/activations.md).
GAUSS_FULL_SAMPLES = 300
WIRE_FULL_SAMPLES = 320


@register
class GaussINR(_ActivationINR):
    """MLP with Gaussian activations ``exp(-(scale z)^2)``.

    Parameters
    ----------
    width : int, default=256
        Features of every hidden layer.
    depth : int, default=3
        Number of ``width x width`` hidden layers.
    scale : "auto" or float, default="auto"
        Inverse width of the Gaussian. The comparisons in WIRE's and FINER's code use 30
        (FINER's image script); "auto" uses 30 from 300 samples along the signal's
        longest axis up and ``samples / 10`` below (``scale_``): a narrower Gaussian
        than the sample spacing memorises the samples and renders noise between them.
        (measured: ``docs/estimators/activations.md``, "Why the defaults").
    learning_rate : float, default=5e-3
        Adam's step size (FINER's script for Gauss).
    max_iter : int, default=1000
        Number of optimizer steps. The official scripts decay the learning rate to a
        tenth over the fit, so ``lr_schedule`` defaults to "exponential" here.
    %(common_parameters)s

    Attributes
    ----------
    module_ : ActivatedMLP
        The trained torch module.
    scale_ : float
        The Gaussian's inverse width: ``scale``, or what "auto" chose.
    n_params_ : int
        Trainable parameters.
    %(common_attributes)s

    See Also
    --------
    WIRE : A Gaussian window times a complex sinusoid.

    Notes
    -----
    The paper writes the activation ``exp(-x^2 / (2 sigma^2))``; ``scale`` is
    ``1 / (sqrt(2) sigma)``. Unlike a sine, a Gaussian needs no special
    initialisation to train a deep network (paper Sec. 4).

    References
    ----------
    .. [1] S. Ramasinghe, S. Lucey. "Beyond Periodicity: Towards a Unifying Framework
       for Activations in Coordinate-MLPs". ECCV 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skinr import GaussINR
    >>> from skinr.signals import to_coords
    >>> X, y = to_coords(np.sin(np.linspace(0, 6, 64)))
    >>> model = GaussINR(width=32, depth=2, max_iter=50, random_state=0).fit(X, y)
    >>> model.predict(X).shape
    (64,)
    """

    _parameter_constraints = {
        **_ActivationINR._parameter_constraints,
        "scale": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
    }

    def __init__(
        self,
        width=256,
        depth=3,
        *,
        scale="auto",
        learning_rate=5e-3,
        max_iter=1000,
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
        self.width = width
        self.depth = depth
        self.scale = scale
        super().__init__(**common_params(locals()))

    def _structure(self, X, n_outputs):
        if self.scale != "auto":
            return {"scale_": float(self.scale)}
        samples = samples_per_axis(X, self.predict_batch_size)
        return {"scale_": scaled_to_density(30.0, samples, GAUSS_FULL_SAMPLES)}

    def _build_module(self, n_dims, n_outputs, generator):
        scale = self.scale_

        def layer(n_in, n_out, is_first):
            return GaussianLinear(n_in, n_out, scale=scale, generator=generator)

        def readout(n_in, n_out):
            return Linear(n_in, n_out, init="torch", generator=generator)

        return ActivatedMLP(n_dims, n_outputs, self.width, self.depth, layer=layer, readout=readout)


@register
class WIRE(_ActivationINR):
    """MLP with WIRE's complex Gabor wavelet activation ``exp(i omega_0 z - |sigma_0 z|^2)``.

    Parameters
    ----------
    width : int, default=256
        Real features a hidden layer would have: the complex layers get
        ``int(width / sqrt(2))`` (181 for 256), as in the official code, so the
        parameter count stays near a real network's.
    depth : int, default=3
        Number of hidden complex layers after the first (FINER's comparison uses 3).
    omega_0 : "auto" or float, default="auto"
        Frequency of the wavelet's sinusoid. The official image setting is 20; "auto"
        uses 20 from 320 samples along the signal's longest axis up and ``samples / 16``
        below (``omega_0_``). Lower values predict better between point samples but fit
        them less and blur a render of block means. (measured:
        ``docs/estimators/activations.md``, "Why the defaults").
    sigma_0 : "auto" or float, default="auto"
        Inverse width of its Gaussian window: officially 10; "auto" 10 from 320 samples
        up and ``samples / 32`` below (``sigma_0_``). At the official values a small
        image is memorised and rendered as noise between its samples. (measured:
        ``docs/estimators/activations.md``, "Why the defaults").
    learning_rate : float, default=1e-3
        Adam's step size. FINER's sweep found 5e-3 best on its 512 x 512 images; on
        smaller images 5e-3 stalls, and 1e-3 fits without a plateau. (measured:
        ``docs/estimators/activations.md``, "Why the defaults").
    max_iter : int, default=1000
        Number of optimizer steps. The official scripts decay the learning rate to a
        tenth over the fit, so ``lr_schedule`` defaults to "exponential" here.
    %(common_parameters)s

    Attributes
    ----------
    module_ : ActivatedMLP
        The trained torch module; complex weights are stored as real and imaginary
        parts (``weight_real``, ``weight_imag``).
    omega_0_, sigma_0_ : float
        The wavelet's frequency and inverse width: the parameters, or what "auto"
        chose.
    n_params_ : int
        Trainable (real) parameters.
    %(common_attributes)s

    See Also
    --------
    GaussINR : The Gaussian window alone.
    SIREN : The sinusoid alone.

    Notes
    -----
    The first layer is real; its wavelet makes the features complex, the hidden layers
    are complex affine maps, and the prediction is the real part of a complex readout
    (paper Sec. 3). The wavelet is evaluated in float32 even under
    ``precision="bf16"`` (its Gaussian window is too narrow for bfloat16's 8 bits);
    the matrix products follow ``precision``.

    References
    ----------
    .. [1] V. Saragadam, D. LeJeune, J. Tan, G. Balakrishnan, A. Veeraraghavan,
       R. Baraniuk. "WIRE: Wavelet Implicit Neural Representations". CVPR 2023.

    Examples
    --------
    >>> import numpy as np
    >>> from skinr import WIRE
    >>> from skinr.signals import to_coords
    >>> X, y = to_coords(np.sin(np.linspace(0, 6, 64)))
    >>> model = WIRE(width=32, depth=2, max_iter=50, random_state=0).fit(X, y)
    >>> model.predict(X).shape
    (64,)
    """

    _parameter_constraints = {
        **_ActivationINR._parameter_constraints,
        "width": [Interval(Integral, 2, None, closed="left")],
        "omega_0": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "sigma_0": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
    }

    def __init__(
        self,
        width=256,
        depth=3,
        *,
        omega_0="auto",
        sigma_0="auto",
        learning_rate=1e-3,
        max_iter=1000,
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
        self.width = width
        self.depth = depth
        self.omega_0 = omega_0
        self.sigma_0 = sigma_0
        super().__init__(**common_params(locals()))

    def _structure(self, X, n_outputs):
        samples = samples_per_axis(X, self.predict_batch_size)
        return {
            name: float(value)
            if value != "auto"
            else scaled_to_density(official, samples, WIRE_FULL_SAMPLES)
            for name, value, official in (
                ("omega_0_", self.omega_0, 20.0),
                ("sigma_0_", self.sigma_0, 10.0),
            )
        }

    def _build_module(self, n_dims, n_outputs, generator):
        omega_0, sigma_0 = self.omega_0_, self.sigma_0_
        complex_width = int(self.width / math.sqrt(2))

        def layer(n_in, n_out, is_first):
            return ComplexGaborLinear(
                n_in,
                n_out,
                omega_0=omega_0,
                sigma_0=sigma_0,
                is_first=is_first,
                generator=generator,
            )

        def readout(n_in, n_out):
            return ComplexLinear(n_in, n_out, real_only=True, generator=generator)

        return ActivatedMLP(
            n_dims, n_outputs, complex_width, self.depth, layer=layer, readout=readout
        )
