"""The parameters and fitted attributes every estimator shares, each written once.

:data:`COMMON_PARAMETERS` holds one row per common parameter: its default, its
constraints (from which ``BaseINR._parameter_constraints`` comes) and its doc (from
which every estimator's docstring takes its text). ``tests/test_docs.py`` checks that
each estimator's ``__init__`` has every common parameter with the row's default.

Each estimator's docstring holds ``%(common_parameters)s`` after its own
``learning_rate`` and ``max_iter`` (which carry measured, per-estimator defaults), and
``%(common_attributes)s`` after its own attributes; :class:`skinr.base.BaseINR`
substitutes these texts (with that estimator's defaults) when the class is created, so
the wording cannot drift between estimators. ``tests/test_docs.py`` checks that every
attribute a fit produces is documented.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
from numbers import Integral, Real

import torch

from .acceleration import PRECISIONS
from .loop import SCHEDULES
from .operator import Operator
from .validation import Interval, StrOptions

__all__ = [
    "ATTRIBUTES_MARKER",
    "COMMON_ATTRIBUTE_DOCS",
    "COMMON_PARAMETERS",
    "COMMON_PARAM_NAMES",
    "MARKER",
    "PER_ESTIMATOR",
    "common_attribute_docs",
    "common_parameter_docs",
]


@dataclasses.dataclass(frozen=True)
class _Common:
    """One common parameter: its default, its constraints (scikit-learn's
    ``_parameter_constraints`` form) and its numpydoc type and text (None: each
    estimator documents it, with the default measured for it)."""

    default: object
    constraints: list
    kind: str | None = None
    doc: str | None = None


# A default each estimator sets for itself, as its paper trains it or as measured for it
# (learning_rate, max_iter, lr_schedule, batch_size); the table holds the rest.
PER_ESTIMATOR = object()

COMMON_PARAMETERS = {
    "learning_rate": _Common(PER_ESTIMATOR, [Interval(Real, 0, None, closed="neither")]),
    "max_iter": _Common(PER_ESTIMATOR, [Interval(Integral, 1, None, closed="left")]),
    "max_time": _Common(
        None,
        [Interval(Real, 0, None, closed="neither"), None],
        "float or None",
        """Seconds of training after which ``fit`` stops (checked after each step;
        None: no limit). The learning-rate schedule follows the steps or the time,
        whichever is further along, so a fit the clock stops ends annealed.""",
    ),
    "batch_size": _Common(
        PER_ESTIMATOR,
        [Interval(Integral, 1, None, closed="left"), None],
        "int or None",
        """Coordinates per step: None uses the whole signal every step; an int samples
        that many without replacement within each pass. Values above the number of
        samples are clamped to it.""",
    ),
    "lr_schedule": _Common(
        PER_ESTIMATOR,
        [StrOptions(set(SCHEDULES)), None],
        '{"constant", "cosine", "exponential"} or None',
        """Learning-rate multiplier over the steps: None/"constant" keeps it, "cosine"
        anneals it to 0, "exponential" decays it to 0.1x.""",
    ),
    "tol": _Common(
        0.0,
        [Interval(Real, 0, None, closed="left")],
        "float",
        "Minimum loss improvement that resets the early-stopping counter.",
    ),
    "n_iter_no_change": _Common(
        None,
        [Interval(Integral, 1, None, closed="left"), None],
        "int or None",
        """Stop when the training loss has not improved by ``tol`` for this many
        consecutive steps; None trains for ``max_iter`` steps. With ``early_stopping``,
        counts held-out scorings without improvement instead (None: 10).""",
    ),
    "early_stopping": _Common(
        False,
        ["boolean"],
        "bool",
        """Hold out a random ``validation_fraction`` of the samples, score the network
        on them every ``validation_interval`` steps, stop when that error has not
        improved by ``tol`` for ``n_iter_no_change`` scorings, and keep the weights of
        the best scoring (``validation_scores_``). What is measured is prediction
        between samples, not memorisation of them.""",
    ),
    "validation_fraction": _Common(
        0.1,
        [Interval(Real, 0, 1, closed="neither")],
        "float",
        "Share of the samples held out for ``early_stopping`` (drawn from ``random_state``).",
    ),
    "validation_interval": _Common(
        10,
        [Interval(Integral, 1, None, closed="left")],
        "int",
        "Steps between held-out scorings with ``early_stopping``.",
    ),
    "warm_start": _Common(
        False,
        ["boolean"],
        "bool",
        """Continue from the fitted weights (and the fitted normalisation) on the next
        ``fit`` instead of re-initialising; Adam's moments restart.""",
    ),
    "random_state": _Common(
        None,
        ["random_state"],
        "int, RandomState instance or None",
        """Seeds weight initialisation and batch sampling. The same int gives identical
        predictions on the CPU.""",
    ),
    "device": _Common(
        "auto",
        [str, torch.device],
        "str or torch.device",
        """"auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".""",
    ),
    "verbose": _Common(
        False,
        ["verbose"],
        "bool or int",
        "Show a progress bar with the loss and the training PSNR.",
    ),
    "predict_batch_size": _Common(
        65536,
        [Interval(Integral, 1, None, closed="left")],
        "int",
        "Coordinates per forward pass in ``predict``; bounds memory at any resolution.",
    ),
    "data_range": _Common(
        None,
        [Interval(Real, 0, None, closed="neither"), None],
        "float or None",
        "Peak used by ``score`` for PSNR; None uses the range of ``y`` seen at fit.",
    ),
    "domain": _Common(
        None,
        ["array-like", None],
        "array-like of shape (2,) or (n_dims, 2), or None",
        """Coordinate box mapped to [-1, 1] for the network; None uses the bounding box
        of ``X`` at fit. Set it when later data (extension, other crops) share a frame.""",
    ),
    "operator": _Common(
        None,
        [Operator, None],
        "skinr.inverse.Operator or None",
        """The measurement process behind ``y`` (:mod:`skinr.inverse`): the network
        represents the signal ``f``, training fits ``operator(f)`` to ``y``, and
        ``predict``/``score`` stay in the measurements' space (``predict_signal`` and
        ``render`` give ``f``). None fits ``y`` directly.""",
    ),
    "checkpoint_path": _Common(
        None,
        [str, os.PathLike, None],
        "str, path-like or None",
        """File to save training checkpoints to. If it holds a checkpoint of the same
        estimator, parameters and data, ``fit`` resumes from it and ends with the
        predictions an uninterrupted fit would give; any other checkpoint there is
        refused with an error. Removed when the fit completes; kept (and rewritten)
        when training is interrupted.""",
    ),
    "checkpoint_every": _Common(
        100,
        [Interval(Integral, 1, None, closed="left")],
        "int",
        "Steps between checkpoints when ``checkpoint_path`` is set.",
    ),
    "precision": _Common(
        "float32",
        [StrOptions(set(PRECISIONS))],
        '{"float32", "tf32", "bf16"}',
        """Arithmetic of training: "tf32" lets CUDA matmuls use TF32 (Ampere and newer;
        no effect elsewhere), "bf16" runs the forward pass under bfloat16 autocast (fast
        on GPUs, usually slower on CPUs). Weights, optimizer and predictions stay
        float32.""",
    ),
    "torch_compile": _Common(
        "auto",
        [StrOptions({"auto"}), "boolean"],
        '"auto" or bool',
        """Compile the training loss with ``torch.compile`` (needs a C++ compiler on the
        CPU). "auto" compiles on the CPU where it was measured to speed up this
        architecture's step, for fits of at least 1000 steps, and falls back to eager
        training (with a warning) if compilation fails; True always compiles; False
        never does.""",
    ),
}
COMMON_PARAM_NAMES = tuple(COMMON_PARAMETERS)
MARKER = "%(common_parameters)s"
ATTRIBUTES_MARKER = "%(common_attributes)s"

_FOOTPRINT = """Unless ``domain`` is set, this is the
        samples' footprint: along a dimension where ``X`` lies on a regular grid, its
        bounding box widened by half a spacing on each side, so that cells align with
        samples."""

#: name -> (type, text); ``domain_``'s text depends on the estimator (see below).
COMMON_ATTRIBUTE_DOCS = {
    "loss_curve_": (
        "list of float",
        "Training loss (MSE on targets scaled to [-1, 1]) after each step.",
    ),
    "best_loss_": ("float", "Smallest value of ``loss_curve_``."),
    "history_": (
        "dict of lists",
        """One entry per step (over warm starts): ``"step"``, ``"loss"`` (as
        ``loss_curve_``), ``"learning_rate"`` (the step's) and ``"seconds"`` (of
        training, at the end of the step).""",
    ),
    "n_iter_": ("int", "Optimizer steps taken (summed over warm starts)."),
    "stopped_early_": ("bool", "Whether ``n_iter_no_change`` ended the last fit."),
    "fit_time_": ("float", "Seconds the last ``fit`` took."),
    "validation_scores_": (
        "list of float or None",
        """Held-out PSNR (dB) at each scoring of an ``early_stopping`` fit; None
        without early stopping.""",
    ),
    "best_validation_score_": (
        "float or None",
        """Highest of ``validation_scores_``: the fitted weights are those of that
        scoring.""",
    ),
    "compiled_": ("bool", "Whether the last ``fit`` trained through ``torch.compile``."),
    "domain_": (
        "ndarray of shape (n_dims, 2)",
        """Coordinate box mapped to [-1, 1]: the bounding box of ``X`` at fit unless
        ``domain`` is set.""",
    ),
    "footprint_": (
        "ndarray of shape (n_dims, 2)",
        """The area the training samples stand for: their bounding box, widened by half
        a spacing along each dimension where they lie on a regular grid (each pixel
        owns its square). ``grid_coordinates`` and ``render`` lay grids over it;
        ``predict`` warns (:class:`~skinr.ExtrapolationWarning`) at points far outside.""",
    ),
    "grid_shape_": (
        "tuple of int",
        """Samples along each axis of the signal fitted: the training grid's shape (an
        image's ``(H, W)``) when ``X`` was a full regular grid, else the sides of a
        grid with as many points. ``render(tuple(4 * n for n in grid_shape_))`` is a 4x
        super-resolution.""",
    ),
    "data_range_": ("float", "Range of the training targets (1.0 for a constant signal)."),
    "operator_": (
        "skinr.inverse.Operator or None",
        """The ``operator`` resolved for the fitted measurements (pixel sizes, the
        signal's grid); None without an operator.""",
    ),
    "y_offset_, y_scale_": (
        "float",
        """The network outputs ``(f - y_offset_) / y_scale_``, about [-1, 1]: ``f`` is
        ``y``, or with an ``operator`` the signal, scaled by the operator's gain.""",
    ),
    "y_ndim_": ("int", "Dimensionality of ``y`` at fit (1-D targets give 1-D predictions)."),
    "n_features_in_": ("int", "Coordinate dimensions."),
    "n_outputs_": ("int", "Output channels."),
    "device_": ("str", "Device the module lives on."),
}


def _indented(entries) -> str:
    """``(name, kind, text)`` entries as numpydoc blocks, indented for a class docstring."""
    return "\n".join(
        f"    {name} : {kind}\n        {text}" for name, kind, text in entries
    ).lstrip()


def common_parameter_docs(cls) -> str:
    """The shared parameter docs with ``cls``'s defaults, indented for a class docstring."""
    defaults = inspect.signature(cls.__init__).parameters

    def shown(name):
        default = defaults[name].default
        return f'"{default}"' if isinstance(default, str) else repr(default)

    return _indented(
        (name, f"{kind}, default={shown(name)}", text)
        for name, (kind, text) in (
            (name, (row.kind, row.doc)) for name, row in COMMON_PARAMETERS.items() if row.doc
        )
    )


def common_attribute_docs(cls) -> str:
    """The shared fitted-attribute docs for ``cls``, indented for a class docstring.

    ``domain_`` says "footprint" for the estimators that lay their domain on the
    samples' footprint (``cls._domain_is_footprint``).
    """
    footprint = getattr(cls, "_domain_is_footprint", False)
    return _indented(
        (
            name,
            kind,
            f"Coordinate box mapped to [-1, 1]. {_FOOTPRINT}"
            if name == "domain_" and footprint
            else text,
        )
        for name, (kind, text) in COMMON_ATTRIBUTE_DOCS.items()
    )


_SECTION = re.compile(r"^    (\w[\w ]*)\n    -+$", re.M)
_ENTRY = re.compile(r"^    (\w+_(?:, \w+_)*) :", re.M)


_TYPED_ENTRY = re.compile(r"^    (\w+_(?:, \w+_)*) : ([^\n]+)$", re.M)


# Set by every fit, documented by each estimator with its own network's type.
_OWN_DOCS_ATTRIBUTES = {"module_": "torch.nn.Module", "n_params_": "int"}


def _attributes_section(cls) -> str:
    """The body of the Attributes section of ``cls``'s docstring ("" without one)."""
    doc = cls.__doc__ or ""
    sections = list(_SECTION.finditer(doc))
    for index, here in enumerate(sections):
        if here.group(1) == "Attributes":
            end = sections[index + 1].start() if index + 1 < len(sections) else len(doc)
            return doc[here.end() : end]
    return ""


def documented_attribute_types(cls) -> dict[str, str]:
    """Fitted attribute -> the type its docstring states (``"float"``, ``"int or None"``,
    ...): what :func:`skinr.load` holds a file's scalars to. The attributes every fit
    produces count as documented, with their shared types, for an architecture whose
    docstring does not list them (one defined outside skinr)."""
    types = {
        name: kind
        for names, (kind, _) in COMMON_ATTRIBUTE_DOCS.items()
        for name in names.split(", ")
    }
    for names, kind in _TYPED_ENTRY.findall(_attributes_section(cls)):
        types.update(dict.fromkeys(names.split(", "), kind.strip()))
    return types


def documented_attributes(cls) -> set[str]:
    """The fitted attributes ``cls``'s docstring documents (its Attributes section), and
    those every fit produces: what :func:`skinr.load` accepts from a file, and the docs
    tests' reference."""
    own = _ENTRY.findall(_attributes_section(cls))
    entries = [*_OWN_DOCS_ATTRIBUTES, *COMMON_ATTRIBUTE_DOCS, *own]
    return {name for entry in entries for name in entry.split(", ")}
