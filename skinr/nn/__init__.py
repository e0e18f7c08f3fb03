"""Building blocks of the networks: layers several architectures share, coordinate
encodings, cell partitions, analytic FLOP counts and the native CPU kernels.

The names here are what a new architecture builds from (``docs/extending.md``); every
layer counts its own FLOPs (``flops(n_samples)``).
"""

from .cells import check_cells, grouped_mse, locate_cells
from .encodings import DenseGrid, HashEncoding
from .layers import (
    INITS,
    ActivatedMLP,
    BatchedLinear,
    ComplexGaborLinear,
    ComplexLinear,
    EncodedMLP,
    FourierFeatures,
    GaussianLinear,
    Linear,
    PositionalEncoding,
    SineLinear,
    VariablePeriodicLinear,
)

__all__ = [
    "INITS",
    "ActivatedMLP",
    "BatchedLinear",
    "ComplexGaborLinear",
    "ComplexLinear",
    "DenseGrid",
    "EncodedMLP",
    "FourierFeatures",
    "GaussianLinear",
    "HashEncoding",
    "Linear",
    "PositionalEncoding",
    "SineLinear",
    "VariablePeriodicLinear",
    "check_cells",
    "grouped_mse",
    "locate_cells",
]
