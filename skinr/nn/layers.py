"""Torch building blocks shared by several skinr architectures.

Each layer creates its own parameters, initialises them from an explicit
``torch.Generator`` (never the global RNG) in ``reset_parameters``, and reports its
cost with ``flops(n_samples)`` under the convention of :mod:`skinr.nn.flops`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from . import _native as native
from .flops import linear_flops

__all__ = [
    "INITS",
    "ActivatedMLP",
    "BatchedLinear",
    "ComplexGaborLinear",
    "ComplexLinear",
    "EncodedMLP",
    "FourierFeatures",
    "GaussianLinear",
    "Linear",
    "PositionalEncoding",
    "SineLinear",
    "VariablePeriodicLinear",
]


def _uniform_(tensor: Tensor, bound: float, generator: torch.Generator | None) -> None:
    with torch.no_grad():
        tensor.uniform_(-bound, bound, generator=generator)


def siren_first_init(
    weight: Tensor,
    bias: Tensor | None,
    fan_in: int,
    omega_0: float,
    generator: torch.Generator | None,
) -> None:
    """SIREN first layer (Sitzmann et al. 2020, Sec. 3.2): weights U(±1/fan_in)."""
    _uniform_(weight, 1.0 / fan_in, generator)
    if bias is not None:
        # The official code leaves biases at torch's default U(±1/sqrt(fan_in)).
        _uniform_(bias, 1.0 / math.sqrt(fan_in), generator)


def siren_hidden_init(
    weight: Tensor,
    bias: Tensor | None,
    fan_in: int,
    omega_0: float,
    generator: torch.Generator | None,
) -> None:
    """SIREN later layers: U(±sqrt(6/fan_in)/omega_0) keeps sine inputs ~ arcsine-distributed."""
    _uniform_(weight, math.sqrt(6.0 / fan_in) / omega_0, generator)
    if bias is not None:
        _uniform_(bias, 1.0 / math.sqrt(fan_in), generator)


def kaiming_relu_init(
    weight: Tensor,
    bias: Tensor | None,
    fan_in: int,
    omega_0: float,
    generator: torch.Generator | None,
) -> None:
    """He-uniform weights for ReLU layers (variance 2/fan_in), zero biases."""
    _uniform_(weight, math.sqrt(6.0 / fan_in), generator)
    if bias is not None:
        with torch.no_grad():
            bias.zero_()


def torch_default_init(
    weight: Tensor,
    bias: Tensor | None,
    fan_in: int,
    omega_0: float,
    generator: torch.Generator | None,
) -> None:
    """``nn.Linear``'s default (kaiming-uniform with a=sqrt(5)): U(±1/sqrt(fan_in)) for both."""
    _uniform_(weight, 1.0 / math.sqrt(fan_in), generator)
    if bias is not None:
        _uniform_(bias, 1.0 / math.sqrt(fan_in), generator)


def glorot_init(
    weight: Tensor,
    bias: Tensor | None,
    fan_in: int,
    omega_0: float,
    generator: torch.Generator | None,
) -> None:
    """Keras' default Dense init: U(±sqrt(6 / (fan_in + fan_out))) weights, zero biases."""
    # Linear stores (n_out, n_in), BatchedLinear (n_groups, n_in, n_out).
    fan_out = weight.shape[0] if weight.dim() == 2 else weight.shape[-1]
    _uniform_(weight, math.sqrt(6.0 / (fan_in + fan_out)), generator)
    if bias is not None:
        with torch.no_grad():
            bias.zero_()


InitFn = Callable[[Tensor, Tensor | None, int, float, torch.Generator | None], None]

INITS: dict[str, InitFn] = {
    "siren_first": siren_first_init,
    "siren": siren_hidden_init,
    "kaiming_relu": kaiming_relu_init,
    "glorot": glorot_init,
    "torch": torch_default_init,
}


class Linear(nn.Module):
    """Affine map ``(..., n_in) -> (..., n_out)`` with a named, seeded initialisation.

    Parameters
    ----------
    n_in, n_out : int
        Input and output features.
    init : str, default="torch"
        Key of :data:`INITS`.
    omega_0 : float, default=30.0
        Frequency the SIREN inits divide by; ignored by the others.
    bias : bool, default=True
        Whether to learn an additive bias.
    generator : torch.Generator or None
        Source of the initial weights.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        init: str = "torch",
        omega_0: float = 30.0,
        bias: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.n_in, self.n_out, self.init, self.omega_0 = n_in, n_out, init, omega_0
        self.weight = nn.Parameter(torch.empty(n_out, n_in))
        self.bias = nn.Parameter(torch.empty(n_out)) if bias else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw the weights (and bias) from ``INITS[self.init]``."""
        INITS[self.init](self.weight, self.bias, self.n_in, self.omega_0, generator)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight, self.bias)

    def scaled(self, factor: float | Tensor) -> tuple[Tensor, Tensor | None]:
        """``factor`` times the weight and the bias: a layer whose output is scaled
        (a sine's omega_0) scales its small parameters, not its large product, which
        saves an elementwise pass over the activations forward and backward."""
        return factor * self.weight, None if self.bias is None else factor * self.bias

    def flops(self, n_samples: int) -> int:
        """FLOPs for ``n_samples`` inputs."""
        return linear_flops(self.n_in, self.n_out, n_samples)

    def extra_repr(self) -> str:
        return f"n_in={self.n_in}, n_out={self.n_out}, init={self.init!r}"


def _hold_frequency(layer: nn.Module, omega_0: float) -> None:
    """Keep ``omega_0`` as a tensor for ``forward``: torch.compile guards on a float
    attribute's value, so every new omega_0 (a search over it) would compile the fit's
    graph again, and past its recompile limit fall back to eager. Not saved: it is a
    parameter of the layer, rebuilt from the estimator's."""
    layer.register_buffer("frequency", torch.tensor(float(omega_0)), persistent=False)


class SineLinear(Linear):
    """SIREN layer ``sin(omega_0 * (W x + b))`` (the bias sits inside, as in the official code).

    ``is_first`` selects the first-layer initialisation U(±1/n_in); later layers use
    U(±sqrt(6/n_in)/omega_0).
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        omega_0: float = 30.0,
        is_first: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        init = "siren_first" if is_first else "siren"
        super().__init__(n_in, n_out, init=init, omega_0=omega_0, generator=generator)
        _hold_frequency(self, omega_0)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(nn.functional.linear(x, *self.scaled(self.frequency)))


class VariablePeriodicLinear(Linear):
    """FINER layer ``sin(omega_0 (|z| + 1) z)`` with ``z = W x + b`` (Liu et al. 2024).

    The weights follow SIREN's initialisation (``is_first`` as in :class:`SineLinear`);
    ``bias_scale`` draws the bias from U(±bias_scale) instead of torch's default, the
    paper's wider first-layer bias that spreads the neurons over more periods. As in
    the official code, the frequency factor ``|z| + 1`` carries no gradient.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        omega_0: float = 30.0,
        is_first: bool = False,
        bias_scale: float | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        self.bias_scale = bias_scale
        init = "siren_first" if is_first else "siren"
        super().__init__(n_in, n_out, init=init, omega_0=omega_0, generator=generator)
        _hold_frequency(self, omega_0)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        super().reset_parameters(generator)
        if self.bias_scale is not None and self.bias is not None:
            _uniform_(self.bias, self.bias_scale, generator)

    def forward(self, x: Tensor) -> Tensor:
        z = nn.functional.linear(x, self.weight, self.bias)
        return torch.sin(self.frequency * (z.detach().abs() + 1) * z)


class GaussianLinear(Linear):
    """Gaussian-activated layer ``exp(-(scale z)^2)``, ``z = W x + b`` (Ramasinghe &
    Lucey 2022, in the form WIRE's and FINER's code compare against); torch's default
    initialisation."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        scale: float = 30.0,
        generator: torch.Generator | None = None,
    ) -> None:
        self.scale = scale
        super().__init__(n_in, n_out, init="torch", generator=generator)

    def forward(self, x: Tensor) -> Tensor:
        z = nn.functional.linear(x, self.weight, self.bias)
        return torch.exp(-((self.scale * z) ** 2))


class ComplexLinear(nn.Module):
    """Complex affine map on features laid out ``[real | imag]``:
    ``(..., 2 n_in) -> (..., 2 n_out)``.

    The weights are stored as two real tensors, so optimisers, ``safetensors`` and
    autocast see only real ones, and the product runs as one real matmul with the
    block matrix ``[[Wr, -Wi], [Wi, Wr]]``. Both parts are drawn as torch draws a
    complex ``nn.Linear``: U(±1/sqrt(n_in)) for weights and bias. ``real_only``
    returns only the real part of the result, ``(..., n_out)`` (a network's readout).
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        real_only: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.n_in, self.n_out, self.real_only = n_in, n_out, real_only
        self.weight_real = nn.Parameter(torch.empty(n_out, n_in))
        self.weight_imag = nn.Parameter(torch.empty(n_out, n_in))
        self.bias_real = nn.Parameter(torch.empty(n_out))
        self.bias_imag = nn.Parameter(torch.empty(n_out))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw both parts of the weights and bias."""
        bound = 1.0 / math.sqrt(self.n_in)
        for parameter in (self.weight_real, self.weight_imag, self.bias_real, self.bias_imag):
            _uniform_(parameter, bound, generator)

    def forward(self, x: Tensor) -> Tensor:
        real_row = torch.cat([self.weight_real, -self.weight_imag], dim=1)
        if self.real_only:
            return nn.functional.linear(x, real_row, self.bias_real)
        imag_row = torch.cat([self.weight_imag, self.weight_real], dim=1)
        weight = torch.cat([real_row, imag_row], dim=0)
        return nn.functional.linear(x, weight, torch.cat([self.bias_real, self.bias_imag]))

    def flops(self, n_samples: int) -> int:
        """Four real products (two for a real-only readout)."""
        products = 2 if self.real_only else 4
        return products * linear_flops(self.n_in, self.n_out, n_samples)


def complex_gabor(real: Tensor, imag: Tensor | None, omega_0: float, sigma_0: float) -> Tensor:
    """WIRE's wavelet ``exp(i omega_0 z - |sigma_0 z|^2)`` of ``z = real + i imag``
    (``imag=None``: a real ``z``), laid out ``[real | imag]``.

    Computed in float32 whatever autocast chose for ``z``: the Gaussian window of a
    bfloat16 ``z`` is too coarse to train on.
    """
    real = real.float()
    if imag is None:
        magnitude = torch.exp(-(sigma_0**2) * real * real)
    else:
        imag = imag.float()
        magnitude = torch.exp(-omega_0 * imag - sigma_0**2 * (real * real + imag * imag))
    phase = omega_0 * real
    return torch.cat([magnitude * torch.cos(phase), magnitude * torch.sin(phase)], dim=-1)


class ComplexGaborLinear(nn.Module):
    """WIRE layer (Saragadam et al. 2023): a linear map, then the complex Gabor wavelet.

    ``is_first`` takes real coordinates ``(..., n_in)`` through a real :class:`Linear`
    (torch's default initialisation, as the official code); later layers are
    :class:`ComplexLinear` on ``(..., 2 n_in)``. The output is ``(..., 2 n_out)``,
    laid out ``[real | imag]``.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        omega_0: float = 20.0,
        sigma_0: float = 10.0,
        is_first: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.omega_0, self.sigma_0, self.is_first = omega_0, sigma_0, is_first
        if is_first:
            self.linear = Linear(n_in, n_out, init="torch", generator=generator)
        else:
            self.linear = ComplexLinear(n_in, n_out, generator=generator)

    def forward(self, x: Tensor) -> Tensor:
        z = self.linear(x)
        if self.is_first:
            return complex_gabor(z, None, self.omega_0, self.sigma_0)
        real, imag = z.chunk(2, dim=-1)
        return complex_gabor(real, imag, self.omega_0, self.sigma_0)

    def flops(self, n_samples: int) -> int:
        """The linear map's (the wavelet is elementwise)."""
        return self.linear.flops(n_samples)


class EncodedMLP(nn.Module):
    """An input encoding, then a ReLU MLP: ``(n_samples, n_dims) -> (n_samples, n_outputs)``.

    ``encoding`` maps coordinates to ``encoding.n_out`` features (Fourier features, a
    hash grid); then a ReLU layer ``features -> width``, ``depth`` ReLU layers
    ``width -> width`` (He initialisation, zero biases) and a linear output. The
    encoding is built before the layers, so a seeded generator draws it first.
    """

    def __init__(
        self,
        encoding: nn.Module,
        n_outputs: int,
        width: int,
        depth: int,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.encoding = encoding
        sizes = [encoding.n_out] + [width] * (depth + 1)
        self.hidden = nn.ModuleList(
            Linear(n_in, n_out, init="kaiming_relu", generator=generator)
            for n_in, n_out in itertools.pairwise(sizes)
        )
        self.output = Linear(width, n_outputs, init="torch", generator=generator)

    def forward(self, coords: Tensor) -> Tensor:
        h = self.encoding(coords)
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return self.output(h)

    def flops(self, n_samples: int) -> int:
        """The encoding's and the layers' FLOPs (ReLU not counted)."""
        layers = [self.encoding, *self.hidden, self.output]
        return sum(layer.flops(n_samples) for layer in layers)


class ActivatedMLP(nn.Module):
    """``n_dims -> width`` activated, ``depth`` activated ``width -> width``, then a readout.

    The MLP every activation-function paper uses, with the layers given as data:
    ``layer(n_in, n_out, is_first)`` builds each activated layer and ``readout(width,
    n_outputs)`` the last one, so SIREN, FINER, Gauss and WIRE differ only in what they
    pass. ``(n_samples, n_dims) -> (n_samples, n_outputs)``.
    """

    def __init__(
        self,
        n_dims: int,
        n_outputs: int,
        width: int,
        depth: int,
        *,
        layer: Callable[[int, int, bool], nn.Module],
        readout: Callable[[int, int], nn.Module],
    ) -> None:
        super().__init__()
        layers = [layer(n_dims, width, True)]
        layers += [layer(width, width, False) for _ in range(depth)]
        self.hidden = nn.Sequential(*layers)
        self.output = readout(width, n_outputs)

    def forward(self, coords: Tensor) -> Tensor:
        return self.output(self.hidden(coords))

    def flops(self, n_samples: int) -> int:
        """FLOPs of a forward pass over ``n_samples`` coordinates."""
        return sum(layer.flops(n_samples) for layer in self.hidden) + self.output.flops(n_samples)


class BatchedLinear(nn.Module):
    """``n_groups`` independent affine maps applied in one batched matmul.

    Maps ``(n_groups, n_points, n_in) -> (n_groups, n_points, n_out)``: group ``g``'s
    points go through weight ``g``. Used for the cells of an ensemble and the
    partitions of a locally connected layer. Each group is initialised as an
    independent :class:`Linear` with the same ``init`` (fan-in = ``n_in``).
    The products run through skinr's native CPU kernels where
    :func:`skinr.nn._native.supports` allows (AVX-512, float32, widths a multiple of 16),
    else through ``torch.baddbmm``.
    """

    def __init__(
        self,
        n_groups: int,
        n_in: int,
        n_out: int,
        *,
        init: str = "torch",
        omega_0: float = 30.0,
        bias: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.n_groups, self.n_in, self.n_out = n_groups, n_in, n_out
        self.init, self.omega_0 = init, omega_0
        self.weight = nn.Parameter(torch.empty(n_groups, n_in, n_out))
        self.bias = nn.Parameter(torch.empty(n_groups, 1, n_out)) if bias else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Initialise every group from ``INITS[self.init]`` with fan-in ``n_in``."""
        INITS[self.init](self.weight, self.bias, self.n_in, self.omega_0, generator)

    def forward(self, x: Tensor, groups: Tensor | None = None, scale: float = 1.0) -> Tensor:
        """Apply each group's map to its points; ``groups`` (indices) picks a subset.

        With ``groups``, ``x`` is ``(len(groups), n_points, n_in)`` and row ``i`` goes
        through group ``groups[i]`` (e.g. the cells a chunk of points falls in). The
        result is multiplied by ``scale`` (a sine layer's ``omega_0``), inside the
        product where the native kernels run.
        """
        weight, bias = self.weight, self.bias
        if groups is not None:
            weight = weight.index_select(0, groups)
            bias = None if bias is None else bias.index_select(0, groups)
        if native.supports(x, weight):
            return native.grouped_linear(x, weight, bias, scale)
        if scale != 1.0 and weight.shape[-2] < x.shape[-2]:
            # Fewer inputs than points per group: scaling the weight is the smaller pass.
            weight, bias = scale * weight, None if bias is None else scale * bias
            scale = 1.0
        out = torch.bmm(x, weight) if bias is None else torch.baddbmm(bias, x, weight)
        return out if scale == 1.0 else scale * out

    def flops(self, n_samples: int) -> int:
        """FLOPs for ``n_samples`` points in total (each goes through one group)."""
        return linear_flops(self.n_in, self.n_out, n_samples)


class FourierFeatures(nn.Module):
    """Gaussian random Fourier features (Tancik et al. 2020).

    ``(n_samples, n_dims) -> (n_samples, 2 * n_frequencies)``:
    ``[cos(2 pi B u), sin(2 pi B u)]`` with ``B ~ N(0, scale^2)`` fixed at construction
    and ``u = (x + 1) / 2`` the coordinate mapped from [-1, 1] to [0, 1], the unit
    domain the paper's scales refer to.
    """

    def __init__(
        self,
        n_dims: int,
        n_frequencies: int,
        scale: float,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.n_dims, self.n_frequencies, self.scale = n_dims, n_frequencies, scale
        self.register_buffer("frequencies", torch.empty(n_frequencies, n_dims))
        self.reset_parameters(generator)

    @property
    def n_out(self) -> int:
        return 2 * self.n_frequencies

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw the frequency matrix ``B``."""
        with torch.no_grad():
            self.frequencies.normal_(0.0, self.scale, generator=generator)

    def forward(self, x: Tensor) -> Tensor:
        phase = (2 * math.pi) * nn.functional.linear((x + 1) * 0.5, self.frequencies)
        return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)

    def flops(self, n_samples: int) -> int:
        """The projection ``B u`` (the cos/sin are not counted)."""
        return linear_flops(self.n_dims, self.n_frequencies, n_samples)


class PositionalEncoding(nn.Module):
    """Log-linear positional encoding (Tancik et al. 2020, "positional encoding").

    Each coordinate ``u = (x + 1) / 2`` is encoded independently with frequencies
    ``scale ** (j / n_frequencies)``, ``j = 0 .. n_frequencies - 1``:
    ``(n_samples, n_dims) -> (n_samples, 2 * n_dims * n_frequencies)``.
    """

    def __init__(
        self,
        n_dims: int,
        n_frequencies: int,
        scale: float,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.n_dims, self.n_frequencies, self.scale = n_dims, n_frequencies, scale
        exponents = torch.arange(n_frequencies, dtype=torch.float32) / n_frequencies
        self.register_buffer("frequencies", float(scale) ** exponents)

    @property
    def n_out(self) -> int:
        return 2 * self.n_dims * self.n_frequencies

    def forward(self, x: Tensor) -> Tensor:
        phase = (2 * math.pi) * ((x + 1) * 0.5).unsqueeze(-1) * self.frequencies
        phase = phase.flatten(start_dim=-2)
        return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)

    def flops(self, n_samples: int) -> int:
        """Zero: the encoding is elementwise scalings and cos/sin, none of them counted."""
        return 0
