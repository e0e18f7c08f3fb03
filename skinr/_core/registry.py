"""The estimators :func:`skinr.load` may rebuild, by class name.

Kept below every module that needs it (persistence, the command line), so that none of
them imports the package ``__init__``. Each public estimator registers itself where it
is defined; a class registered nowhere can never be named by a model file.
"""

from __future__ import annotations

__all__ = ["ESTIMATORS", "register"]

#: Class name -> estimator class, in the order the estimators were defined.
ESTIMATORS: dict[str, type] = {}


def register(cls: type) -> type:
    """Add ``cls`` to :data:`ESTIMATORS` (a class decorator)."""
    ESTIMATORS[cls.__name__] = cls
    return cls
