"""Model selection for INRs: splitters and scorers for scikit-learn's searches.

An INR search usually compares structures on one signal. ``GridSearchCV`` with the
default ``cv=5`` cuts raster-ordered coordinates into contiguous bands, which tests
extrapolation; pass ``KFold(shuffle=True)`` to hold out scattered samples
(interpolation), or :class:`FullSignalSplit` to fit and score on the whole signal.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import BaseCrossValidator

__all__ = ["FullSignalSplit"]


class FullSignalSplit(BaseCrossValidator):
    """A single "split" whose training and test sets are both the whole signal.

    With it, ``GridSearchCV`` ranks candidates by how well they fit the signal itself
    (fit PSNR), as the INR papers' structure searches do.

    Examples
    --------
    >>> import numpy as np
    >>> from skinr.model_selection import FullSignalSplit
    >>> [(len(tr), len(te)) for tr, te in FullSignalSplit().split(np.zeros((5, 2)))]
    [(5, 5)]
    """

    def split(self, X, y=None, groups=None):
        """Yield the one split: every index as both training and test set.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_dims)
            Coordinates (only their number is used).
        y, groups : ignored
            Present for API compatibility.

        Yields
        ------
        train, test : ndarray
            ``arange(n_samples)`` twice.
        """
        indices = np.arange(len(X))
        yield indices, indices

    def get_n_splits(self, X=None, y=None, groups=None):
        """Return 1.

        Parameters
        ----------
        X, y, groups : ignored
            Present for API compatibility.

        Returns
        -------
        int
            The number of splits, 1.
        """
        return 1

    def _iter_test_indices(self, X=None, y=None, groups=None):
        yield np.arange(len(X))
