"""Quantisation-aware refinement of a fitted model before it is coded.

Strümpler et al. (ECCV 2022) retrain an INR with its weights quantised in the forward
pass and the gradient passed straight through to the float weights: the network
learns to live on the quantisation grid. Here a copy of the fitted model runs a few
such Adam steps on the signal it was fitted to, with each tensor's step fixed from the
fitted weights (the stream stores those steps), and ends on the grid.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np
import torch

from .._core.domain import normalise, normalise_values
from .._core.validation import check_score_data
from ._model_stream import quantised

__all__ = ["check_refine", "refined"]

# Adam's step size during refinement, as a share of the estimator's own: the fitted
# weights are near a minimum, and a full-size step throws them off it.
LEARNING_RATE_SHARE = 0.3
# Points per refinement step; a larger signal is sampled.
BATCH = 1 << 16


def check_refine(estimator, refine, X, y) -> int:
    """``refine`` as a step count, with the signal it needs; refused in one line."""
    if not isinstance(refine, numbers.Integral) or isinstance(refine, bool) or refine < 0:
        raise ValueError(f"refine must be a number of steps >= 0; got {refine!r}.")
    if refine and (X is None or y is None):
        raise ValueError("refine= trains on the fitted signal: pass X and y.")
    if refine and getattr(estimator, "operator_", None) is not None:
        raise ValueError(
            "refine= trains on samples of the signal; this model was fitted through an "
            "operator. Encode it without refine."
        )
    return int(refine)


def refined(estimator, bits: float, X, y, n_steps: int, seed: int = 0):
    """``(copy, steps)``: a shallow copy of ``estimator`` whose module was trained
    ``n_steps`` steps with its weights quantised in the forward pass, holding the
    quantised weights of its lowest loss; ``steps`` are the per-tensor quantisation
    steps (from the fitted weights)."""
    X = np.asarray(X, dtype=np.float64)
    y, _ = check_score_data(X, y, None)
    if X.ndim != 2 or X.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"refine= needs X of shape (n_samples, {estimator.n_features_in_}); got {X.shape}."
        )
    if y.size != len(y) * estimator.n_outputs_:
        raise ValueError(
            f"y has {y.size // len(y)} channel(s); the model predicts {estimator.n_outputs_}."
        )
    steps = {name: step for name, (_, step) in quantised(estimator.module_, bits).items()}
    module = copy.deepcopy(estimator.module_)
    params = {name: p for name, p in module.named_parameters() if name in steps}
    device = next(iter(params.values())).device
    coords = torch.from_numpy(normalise(X, estimator.domain_)).to(device)
    values = normalise_values(y.reshape(len(y), -1), estimator.y_offset_, estimator.y_scale_)
    values = torch.from_numpy(values).to(device)
    grid = {
        name: torch.tensor(step, dtype=params[name].dtype, device=device)
        for name, step in steps.items()
    }

    def snap():
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(torch.round(p / grid[name]) * grid[name])

    optimizer = torch.optim.Adam(
        params.values(), lr=float(estimator.learning_rate) * LEARNING_RATE_SHARE
    )
    generator = torch.Generator().manual_seed(seed)
    module.train()
    best, best_weights = float("inf"), None
    for k in range(n_steps + 1):
        kept = {name: p.detach().clone() for name, p in params.items()}
        snap()  # the forward pass sees the quantised weights ...
        rows = (
            torch.randint(len(coords), (BATCH,), generator=generator).to(device)
            if len(coords) > BATCH
            else slice(None)
        )
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(module(coords[rows]), values[rows])
        # The loss is the quantised model's: keep the best grid point met (the first
        # is plain rounding, so refining never ends worse than not refining).
        if float(loss.detach()) < best:
            best = float(loss.detach())
            best_weights = {name: p.detach().clone() for name, p in params.items()}
        if k == n_steps:
            break
        loss.backward()
        with torch.no_grad():  # ... and the step moves the float weights (straight through)
            for name, p in params.items():
                p.copy_(kept[name])
        optimizer.step()
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(best_weights[name])
    module.eval()
    out = copy.copy(estimator)
    out.module_ = module
    return out, steps
