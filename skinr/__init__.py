"""skinr: implicit neural representations with the scikit-learn estimator API.

Fit a small neural network to one signal (audio, image, video, volume) as a function
from coordinates to values, then evaluate it anywhere.
"""

from . import codec, datasets, inverse, io, meta, metrics, model_selection, parallel, signals
from ._core.domain import ExtrapolationWarning
from ._core.registry import ESTIMATORS
from ._version import __version__
from .base import BaseINR
from .codec import LatentCodec
from .comparison import Comparison, compare
from .estimators.activations import FINER, WIRE, GaussINR
from .estimators.ensemble import EnsembleINR
from .estimators.fourier import FourierFeatureMLP
from .estimators.grids import Grid, HashGrid
from .estimators.localglobal import LocalGlobalSIREN
from .estimators.loe import LoESine
from .estimators.multihead import MultiHeadReLU
from .estimators.siren import SIREN
from .estimators.sl2a import SL2A
from .parallel import fit_many
from .persistence import DeviceWarning, load

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
    "meta",
    "metrics",
    "model_selection",
    "parallel",
    "signals",
]
