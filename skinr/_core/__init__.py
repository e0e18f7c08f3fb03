"""The fit engine every estimator shares: validation, the value frame and domain, the
fit sequence and its loop, objectives, checkpoints, acceleration and the registry.

Private: estimators reach it through :class:`skinr.base.BaseINR`."""
