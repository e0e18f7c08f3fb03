"""SL2A-INR: a single learnable-activation layer followed by a modulated ReLU MLP.

Heidari, Rezaeian, Azad, Merhof, Soltanian-Zadeh, Hacihaliloglu, "Single-Layer Learnable
Activation for Implicit Neural Representation (SL2A-INR)" (code:
moeinheidari7829/SL2A-INR, Iceage7/SL2A-INR).

Where the authors' code differs from the paper, skinr follows the code:

- the Chebyshev expansion runs over T_0 .. T_D (D + 1 coefficients per edge; the paper's
  Eq. 3 sums d = 1 .. D), on ``tanh(x)``, followed by LayerNorm;
- every layer after the learnable-activation block is modulated, the output layer
  included: layer l sees ``Psi * h_{l-1}`` (so the first fusion layer sees ``Psi * Psi``;
  the paper's Eq. 5 modulates layers 2 .. L-1 only);
- the fusion layers are factorised, ``W = A B`` with ``A: width x rank`` and
  ``B: rank x width``, each factor initialised kaiming-uniform(a=sqrt(5)) with torch's
  fan-in of its second dimension; ``rank=None`` gives dense layers instead.
"""

from __future__ import annotations

import math
from numbers import Integral

import torch
from torch import Tensor, nn

from .._core.registry import register
from .._core.sample_layout import samples_per_axis
from .._core.validation import Interval, StrOptions
from ..base import BaseINR, common_params
from ..nn.flops import linear_flops
from ..nn.layers import Linear

#: The paper's Chebyshev degree for images, the most "auto" takes.
PAPER_DEGREE = 512

__all__ = ["SL2A", "ChebyshevLA", "SL2ANet"]


def chebyshev_basis(t: Tensor, degree: int) -> Tensor:
    """``T_0(t) .. T_degree(t)`` for ``t`` in [-1, 1]: ``(..., n) -> (..., n, degree + 1)``.

    Uses ``T_k(t) = cos(k arccos t)``, one vectorised cosine over all degrees (the
    three-term recurrence gives the same values but needs ``degree`` sequential kernels).
    """
    orders = torch.arange(degree + 1, dtype=t.dtype, device=t.device)
    phase = torch.arccos(t).unsqueeze(-1) * orders
    # In place unless gradients must flow to t: the basis is the layer's largest tensor.
    return torch.cos(phase) if phase.requires_grad else phase.cos_()


class ChebyshevLA(nn.Module):
    """Learnable-activation layer: ``(n, n_dims) -> (n, width)``.

    Every edge (output m, input j) applies ``psi_mj(x_j) = sum_k a_mjk T_k(tanh x_j)``;
    edge outputs are summed over j, then layer-normalised. Coordinates that repeat along
    an axis (the pixels of a grid) are expanded once per distinct value; the values and
    the coefficients' gradients are the direct contraction's.
    """

    def __init__(
        self, n_dims: int, width: int, degree: int, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.n_dims, self.width, self.degree = n_dims, width, degree
        self.coefficients = nn.Parameter(torch.empty(n_dims, width, degree + 1))
        self.norm = nn.LayerNorm(width)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Xavier-uniform with torch's fans of a 3-D tensor, as the official code."""
        bound = math.sqrt(6.0 / ((self.n_dims + self.width) * (self.degree + 1)))
        with torch.no_grad():
            self.coefficients.uniform_(-bound, bound, generator=generator)
        self.norm.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.requires_grad or torch.compiler.is_compiling():
            return self.norm(self._contract(x))
        # Each edge's function depends on one coordinate, so the layer is a sum over the
        # dimensions of tables of the coordinate's distinct values: a grid or a batch of
        # its pixels holds a few hundred per axis, and the contraction then costs
        # (distinct values) rather than (points) x (degree + 1) x width, with the same
        # values and gradients. Scattered points (every value distinct) contract directly.
        out = None
        for dim in range(self.n_dims):
            values, index = torch.unique(x[:, dim], return_inverse=True)
            if 2 * values.shape[0] > x.shape[0]:
                return self.norm(self._contract(x))
            basis = chebyshev_basis(torch.tanh(values), self.degree)  # (distinct, degree + 1)
            part = torch.index_select(basis @ self.coefficients[dim].T, 0, index)
            out = part if out is None else out + part
        return self.norm(out)

    def _contract(self, x: Tensor) -> Tensor:
        basis = chebyshev_basis(torch.tanh(x), self.degree)  # (n, n_dims, degree + 1)
        weights = self.coefficients.permute(0, 2, 1).reshape(-1, self.width)
        return basis.reshape(x.shape[0], -1) @ weights

    def flops(self, n_samples: int) -> int:
        """The coefficient contraction, ``2 n n_dims (degree + 1) width``."""
        return linear_flops(self.n_dims * (self.degree + 1), self.width, n_samples)


class LowRankLinear(nn.Module):
    """``x -> x A B + b`` with ``A: n_in x rank``, ``B: rank x n_out`` (the code's init)."""

    def __init__(
        self, n_in: int, n_out: int, rank: int, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.first = nn.Parameter(torch.empty(n_in, rank))
        self.second = nn.Parameter(torch.empty(rank, n_out))
        self.bias = nn.Parameter(torch.empty(n_out))
        with torch.no_grad():  # kaiming-uniform(a=sqrt(5)): U(+-1/sqrt(fan_in)), fan_in = dim 1
            self.first.uniform_(-1 / math.sqrt(rank), 1 / math.sqrt(rank), generator=generator)
            self.second.uniform_(-1 / math.sqrt(n_out), 1 / math.sqrt(n_out), generator=generator)
            self.bias.uniform_(-1 / math.sqrt(rank), 1 / math.sqrt(rank), generator=generator)

    def forward(self, x: Tensor) -> Tensor:
        return torch.addmm(self.bias, x @ self.first, self.second)

    def flops(self, n_samples: int) -> int:
        n_in, rank = self.first.shape
        return linear_flops(n_in, rank, n_samples) + linear_flops(
            rank, self.second.shape[1], n_samples
        )


class SL2ANet(nn.Module):
    """LA block, then ``depth`` modulated ReLU layers and a modulated linear output.

    ``(n_samples, n_dims) -> (n_samples, n_outputs)``.
    """

    def __init__(
        self,
        n_dims: int,
        n_outputs: int,
        width: int = 256,
        depth: int = 3,
        *,
        degree: int = PAPER_DEGREE,
        rank: int | None = 128,
        modulate: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.modulate = modulate
        self.activation = ChebyshevLA(n_dims, width, degree, generator)
        self.hidden = nn.ModuleList(
            Linear(width, width, init="torch", generator=generator)
            if rank is None
            else LowRankLinear(width, width, rank, generator)
            for _ in range(depth)
        )
        self.output = Linear(width, n_outputs, init="torch", generator=generator)

    def forward(self, coords: Tensor) -> Tensor:
        psi = self.activation(coords)
        h = psi
        for index, layer in enumerate(self.hidden):
            if self.modulate:
                # psi * psi first: square's backward is one product, not two.
                h = psi.square() if index == 0 else psi * h
            # In place: a layer's output is not needed by its own backward.
            h = layer(h).relu_()
        return self.output(psi * h if self.modulate else h)

    def flops(self, n_samples: int) -> int:
        """LA contraction + fusion layers + output (the modulation products are not counted)."""
        layers = [self.activation, *self.hidden, self.output]
        return sum(layer.flops(n_samples) for layer in layers)


@register
class SL2A(BaseINR):
    """SL2A-INR: a Chebyshev learnable-activation layer and a modulated ReLU MLP.

    Parameters
    ----------
    width : int, default=256
        Features of the LA layer and of every fusion layer.
    depth : int, default=3
        Number of fusion (ReLU) layers between the LA block and the output layer.
    degree : int or "auto", default="auto"
        Highest Chebyshev degree D of the LA layer (D + 1 coefficients per edge). The
        paper: 512 for images (of 512 pixels a side), 200 super-resolution, 128 CT, 256
        NeRF, 64 in 1-D. "auto" takes half the samples along the longest axis, at most
        the paper's 512: the modulated layers multiply the LA features, which adds their
        frequencies, and at the samples' count a render shows an axis-aligned ripple
        between the samples. An int is used up to the samples along the longest axis
        (``degree_``): a higher degree oscillates between the samples, which the data
        cannot constrain. (measured: ``docs/estimators/sl2a.md``, "Why the defaults").
    rank : int or None, default=128
        Rank of the factorised fusion layers (the code always factorises; 128 at width
        256 is the paper's 0.461 M model, 32 its low-rank variant); None uses dense layers.
    modulate : bool, default=True
        Multiply the input of every layer after the LA block by its output (the paper's
        fusion block); False gives the paper's "simple model" ablation.
    learning_rate : float, default=1e-3
        Adam's step size (the official code's).
    max_iter : int, default=2000
        Number of optimizer steps.
    %(common_parameters)s

    Attributes
    ----------
    module_ : SL2ANet
        The trained torch module.
    degree_ : int
        The degree used: "auto"'s, or ``degree`` capped at the samples along the
        longest axis.
    n_params_ : int
        Trainable parameters (461,315 at the defaults for RGB images of at least 512
        pixels a side, the paper's 0.461 M).
    %(common_attributes)s

    See Also
    --------
    FourierFeatureMLP : The ReLU+PE baseline the paper compares against.

    Notes
    -----
    ``Psi(x) = LayerNorm(sum_j sum_k a_{m,j,k} T_k(tanh x_j))`` (paper Eq. 3, with k from
    0 as in the code); fusion ``h_l = ReLU(W_l (Psi * h_{l-1}) + b_l)`` with
    ``h_0 = Psi``; output ``W_out (Psi * h_L) + b_out``. Coordinates reach the LA layer
    already mapped to [-1, 1], so ``tanh`` never saturates (|tanh| <= 0.76); the defaults
    (lr 1e-3, mini-batches of 16,384, learning rate decaying to 0.1x) are the official
    training script's.

    References
    ----------
    .. [1] M. Heidari, R. Rezaeian, R. Azad, D. Merhof, H. Soltanian-Zadeh,
       I. Hacihaliloglu. "Single-Layer Learnable Activation for Implicit Neural
       Representation (SL2A-INR)".

    Examples
    --------
    >>> import numpy as np
    >>> from skinr import SL2A
    >>> from skinr.signals import to_coords
    >>> X, y = to_coords(np.sin(np.linspace(0, 6, 64)))
    >>> model = SL2A(width=16, degree=8, rank=4, max_iter=20, random_state=0).fit(X, y)
    >>> model.predict(X).shape
    (64,)
    """

    _parameter_constraints = {
        **BaseINR._parameter_constraints,
        "width": [Interval(Integral, 1, None, closed="left")],
        "depth": [Interval(Integral, 0, None, closed="left")],
        "degree": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "rank": [Interval(Integral, 1, None, closed="left"), None],
        "modulate": ["boolean"],
    }

    def __init__(
        self,
        width=256,
        depth=3,
        *,
        degree="auto",
        rank=128,
        modulate=True,
        learning_rate=1e-3,
        max_iter=2000,
        max_time=None,
        batch_size=16384,
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
        self.degree = degree
        self.rank = rank
        self.modulate = modulate
        super().__init__(**common_params(locals()))

    def _structure(self, X, n_outputs):
        samples = samples_per_axis(X, self.predict_batch_size)
        if self.degree == "auto":
            return {"degree_": max(1, min(PAPER_DEGREE, samples // 2))}
        return {"degree_": min(self.degree, samples)}

    def _build_module(self, n_dims, n_outputs, generator):
        if self.rank is not None and self.rank > self.width:
            raise ValueError(
                f"rank={self.rank} is larger than width={self.width}; a factorised layer "
                "of rank above its width only adds parameters. Use rank <= width or None."
            )
        return SL2ANet(
            n_dims,
            n_outputs,
            self.width,
            self.depth,
            degree=self.degree_,
            rank=self.rank,
            modulate=self.modulate,
            generator=generator,
        )
