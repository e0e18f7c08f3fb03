"""FLOP-counting conventions shared by every skinr module.

One convention, stated once: a multiply-add counts as 2 floating-point operations,
an addition or a multiplication as 1. Activation functions (sine, ReLU, cos) are not
counted, as in ptflops and fvcore, so counts are comparable with the papers' tables.
Every module's ``flops`` method is built from these helpers.
"""

from __future__ import annotations


def linear_flops(n_in: int, n_out: int, n_samples: int = 1, *, bias: bool = True) -> int:
    """FLOPs of an affine map ``(n_samples, n_in) -> (n_samples, n_out)``.

    Parameters
    ----------
    n_in, n_out : int
        Input and output features.
    n_samples : int, default=1
        Number of points the map is applied to.
    bias : bool, default=True
        Whether a bias is added (one addition per output).

    Returns
    -------
    int
        ``n_samples * (2 * n_in * n_out + n_out * bias)``.
    """
    return int(n_samples) * (2 * int(n_in) * int(n_out) + (int(n_out) if bias else 0))


def elementwise_flops(n_features: int, n_samples: int = 1, ops_per_element: int = 1) -> int:
    """FLOPs of ``ops_per_element`` arithmetic operations on every feature of every sample."""
    return int(n_samples) * int(n_features) * int(ops_per_element)
