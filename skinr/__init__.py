"""skinr: implicit neural representations with the scikit-learn estimator API.

Fit a small neural network to one signal (audio, image, video, volume) as a function
from coordinates to values, then evaluate it anywhere.
"""

from . import codec, datasets, inverse, io, metrics, model_selection, parallel, signals
from ._domain import ExtrapolationWarning
from ._registry import ESTIMATORS
from ._version import __version__
from .activations import FINER, WIRE, GaussINR
from .base import BaseINR
from .codec import LatentCodec
from .comparison import Comparison, compare
from .ensemble import EnsembleINR
from .fourier import FourierFeatureMLP
from .grids import Grid, HashGrid
from .localglobal import LocalGlobalSIREN
from .loe import LoESine
from .multihead import MultiHeadReLU
from .parallel import fit_many
from .persistence import DeviceWarning, load
from .siren import SIREN
from .sl2a import SL2A

__all__ = [
    "ESTIMATORS",
    "FINER",
    "SIREN",
    "SL2A",
    "WIRE",
    "BaseINR",
    "Comparison",
    "DeviceWarning",
    "EnsembleINR",
    "ExtrapolationWarning",
    "FourierFeatureMLP",
    "GaussINR",
    "Grid",
    "HashGrid",
    "LatentCodec",
    "LoESine",
    "LocalGlobalSIREN",
    "MultiHeadReLU",
    "__version__",
    "codec",
    "compare",
    "datasets",
    "fit_many",
    "inverse",
    "io",
    "load",
    "metrics",
    "model_selection",
    "parallel",
    "signals",
]
