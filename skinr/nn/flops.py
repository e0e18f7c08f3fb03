"""FLOP-counting conventions shared by every skinr module.

One convention, stated once: FLOPs are 2 x the multiply-adds of the matrix products
(weights times features, including basis contractions). Bias additions, elementwise
scalings and activation functions (sine, ReLU, cos) are not counted. This is ptflops'
MACs x 2, the convention behind the ENRP paper's Table I (SIREN 256 x 3 on 128 x 128
pixels = 6.48 GFLOPs), so counts compare with the papers' tables. Every module's
``flops`` method is built from these helpers.
"""

from __future__ import annotations


def linear_flops(n_in: int, n_out: int, n_samples: int = 1) -> int:
    """FLOPs of a linear map ``(n_samples, n_in) -> (n_samples, n_out)``.

    Parameters
    ----------
    n_in, n_out : int
        Input and output features.
    n_samples : int, default=1
        Number of points the map is applied to.

    Returns
    -------
    int
        ``2 * n_samples * n_in * n_out`` (a bias, if any, is not counted).
    """
    return 2 * int(n_samples) * int(n_in) * int(n_out)
