"""The docs of the parameters every estimator shares, written once.

Each estimator's docstring holds ``%(common_parameters)s`` after its own
``learning_rate`` and ``max_iter`` (which carry measured, per-estimator defaults);
:class:`skinr.base.BaseINR` substitutes this text with that estimator's defaults when
the class is created, so the wording cannot drift between estimators.
"""

from __future__ import annotations

import inspect

__all__ = ["COMMON_PARAM_DOCS", "MARKER", "common_parameter_docs"]

COMMON_PARAM_DOCS = {
    "batch_size": (
        "int or None",
        """Coordinates per step: None uses the whole signal every step; an int samples
        that many without replacement within each pass. Values above the number of
        samples are clamped to it.""",
    ),
    "lr_schedule": (
        '{"constant", "cosine", "exponential"} or None',
        """Learning-rate multiplier over the steps: None/"constant" keeps it, "cosine"
        anneals it to 0, "exponential" decays it to 0.1x.""",
    ),
    "tol": ("float", "Minimum loss improvement that resets the early-stopping counter."),
    "n_iter_no_change": (
        "int or None",
        """Stop when the training loss has not improved by ``tol`` for this many
        consecutive steps; None trains for ``max_iter`` steps.""",
    ),
    "warm_start": (
        "bool",
        """Continue from the fitted weights (and the fitted normalisation) on the next
        ``fit`` instead of re-initialising; Adam's moments restart.""",
    ),
    "random_state": (
        "int, RandomState instance or None",
        """Seeds weight initialisation and batch sampling. The same int gives identical
        predictions on the CPU.""",
    ),
    "device": (
        "str or torch.device",
        """"auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".""",
    ),
    "verbose": ("bool or int", "Show a progress bar with the loss and the training PSNR."),
    "predict_batch_size": (
        "int",
        "Coordinates per forward pass in ``predict``; bounds memory at any resolution.",
    ),
    "data_range": (
        "float or None",
        "Peak used by ``score`` for PSNR; None uses the range of ``y`` seen at fit.",
    ),
    "domain": (
        "array-like of shape (2,) or (n_dims, 2), or None",
        """Coordinate box mapped to [-1, 1] for the network; None uses the bounding box
        of ``X`` at fit. Set it when later data (extension, other crops) share a frame.""",
    ),
    "checkpoint_path": (
        "str, path-like or None",
        """File to save training checkpoints to. If it holds a checkpoint of the same
        estimator, parameters and data, ``fit`` resumes from it and ends with the
        predictions an uninterrupted fit would give; any other checkpoint there is
        refused with an error. Removed when the fit completes; kept (and rewritten)
        when training is interrupted.""",
    ),
    "checkpoint_every": ("int", "Steps between checkpoints when ``checkpoint_path`` is set."),
    "precision": (
        '{"float32", "tf32", "bf16"}',
        """Arithmetic of training: "tf32" lets CUDA matmuls use TF32 (Ampere and newer;
        no effect elsewhere), "bf16" runs the forward pass under bfloat16 autocast (fast
        on GPUs, usually slower on CPUs). Weights, optimizer and predictions stay
        float32.""",
    ),
    "torch_compile": (
        '"auto" or bool',
        """Compile the training loss with ``torch.compile`` (needs a C++ compiler on the
        CPU). "auto" compiles on the CPU where it was measured to speed up this
        architecture's step, for fits of at least 1000 steps, and falls back to eager
        training (with a warning) if compilation fails; True always compiles; False
        never does.""",
    ),
}
MARKER = "%(common_parameters)s"


def common_parameter_docs(cls) -> str:
    """The shared parameter docs with ``cls``'s defaults, indented for a class docstring."""
    defaults = inspect.signature(cls.__init__).parameters
    lines = []
    for name, (kind, text) in COMMON_PARAM_DOCS.items():
        default = defaults[name].default
        shown = f'"{default}"' if isinstance(default, str) else repr(default)
        lines.append(f"    {name} : {kind}, default={shown}\n        {text}")
    return "\n".join(lines).lstrip()
