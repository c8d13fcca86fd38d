"""The fixed affine map applied before the first layer: ZCA whitening or standardisation.

:class:`Preprocessor` is a small transformer of its own; a
:class:`~sklearn_structlearn.DeepStructureLearner` holds a fitted one
(``preprocessor_``). It is fitted either on data in memory (:meth:`Preprocessor.fit`) or
from the mean and centred second moment of a stream (:meth:`Preprocessor.fit_moments`,
what ``fit_stream`` accumulates batch by batch with ``_streaming.RunningMoments``); both
give the same map for the same data.
"""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ._param_validation import StrOptions, fit_context, real_in
from ._validation import check_magnitude, check_memory, check_numeric_dtype

__all__ = ["Preprocessor"]


#: ``"standardize"`` adds this fraction of the median variance to every variance before
#: dividing by its square root (see :class:`Preprocessor`).
STANDARDIZE_FLOOR = 0.01


def check_preprocessing_memory(method, n_features):
    """Refuse, before any work, a ZCA map that cannot be computed in this machine's memory:
    the covariance, its eigenvectors and the whitening matrix are ``n_features^2`` float64
    each (standardisation and ``None`` keep ``O(n_features)``)."""
    if method == "zca":
        check_memory(
            3 * 8 * n_features**2,
            f"preprocessing='zca' on {n_features} features (the {n_features} x {n_features} "
            "covariance, its eigenvectors and the whitening matrix)",
            "use preprocessing='standardize', which keeps one variance per feature.",
        )


class Preprocessor(TransformerMixin, BaseEstimator):
    """Fixed affine map ``x -> (x - mean_) @ matrix_``: ZCA whitening or standardisation.

    Parameters
    ----------
    method : {"zca", "standardize"} or None, default="zca"
        ``"zca"`` centres and ZCA-whitens with the regularised covariance (see
        ``zca_epsilon``); ``"standardize"`` centres each feature and divides it by
        ``sqrt(var_j + 0.01 * median_j var_j)`` -- its standard deviation, except for
        almost constant features, which would otherwise become rare huge values
        (constant features are only centred); ``None`` leaves the data as they are
        (``mean_`` is zero and ``matrix_`` None).
    zca_epsilon : float, default=1.0
        ZCA regulariser, relative: ``zca_epsilon`` times the mean eigenvalue of the
        covariance is added to every eigenvalue before inverting their square roots, so
        directions of small variance (mostly noise) are not blown up.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features_in,)
        Mean subtracted first (zeros when ``method=None``).
    matrix_ : ndarray of shape (n_features_in, n_features_in) or None
        Linear map applied after centring (``None``: identity; diagonal for
        ``"standardize"``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in,)
        Names of features seen during :meth:`fit`, when ``X`` has string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.preprocessing import Preprocessor
    >>> X = np.random.RandomState(0).standard_normal((500, 3)) @ [[2, 1, 0], [0, 1, 0], [0, 0, 3]]
    >>> Z = Preprocessor("zca", zca_epsilon=1e-8).fit_transform(X)
    >>> bool(np.allclose(np.cov(Z.T, bias=True), np.eye(3), atol=1e-6))
    True
    """

    _parameter_constraints = {
        "method": [StrOptions({"zca", "standardize"}), None],
        "zca_epsilon": [real_in(0)],
    }

    def __init__(self, method="zca", *, zca_epsilon=1.0):
        self.method = method
        self.zca_epsilon = zca_epsilon

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @fit_context
    def fit(self, X, y=None):
        """Compute the map from the mean and centred second moment of ``X`` (in float64).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : Preprocessor
            The fitted preprocessor.
        """
        check_numeric_dtype(X, "X")
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        check_magnitude(X, "X")
        check_preprocessing_memory(self.method, X.shape[1])
        X64 = np.asarray(X, dtype=np.float64)
        if self.method is None:
            return self._set_map(np.zeros(X64.shape[1]), None)
        mean = X64.mean(axis=0)
        centred = X64 - mean
        if self.method == "standardize":
            return self.fit_moments(mean, centred.var(axis=0))
        return self.fit_moments(mean, centred.T @ centred / X64.shape[0])

    @fit_context
    def fit_moments(self, mean, second_moment):
        """Compute the map from the mean and the centred second moment of the data.

        What :meth:`fit` computes from data in memory, and what a stream gives when its
        moments are merged batch by batch (``DeepStructureLearner.fit_stream``).

        Parameters
        ----------
        mean : ndarray of shape (n_features,)
            Mean of the data.
        second_moment : ndarray of shape (n_features,) or (n_features, n_features)
            Population variances (``method="standardize"``), covariance matrix
            (``"zca"``); ignored when ``method=None``.

        Returns
        -------
        self : Preprocessor
            The fitted preprocessor.
        """
        mean = np.asarray(mean, dtype=np.float64)
        self.n_features_in_ = mean.shape[0]
        if self.method is None:
            return self._set_map(np.zeros(mean.shape[0]), None)
        if self.method == "standardize":
            var = np.asarray(second_moment, dtype=np.float64)
            # Regularised: a feature that is almost constant (a border pixel that is lit
            # in a handful of images) would otherwise be blown up into rare huge values
            # that the sparse coding spends its units on.
            floor = STANDARDIZE_FLOOR * float(np.median(var))
            scale = np.sqrt(var + floor)
            # Constant features are only centred (as StandardScaler does): those whose
            # spread is zero or at the rounding level of their own values. Relative to the
            # feature's magnitude only -- an absolute floor would leave data at 1e-16
            # centred but unscaled.
            scale[scale <= 10 * np.finfo(np.float64).eps * np.abs(mean)] = 1.0
            scale[scale == 0] = 1.0
            return self._set_map(mean, np.diag(1.0 / scale))
        eigvals, eigvecs = np.linalg.eigh(second_moment)
        eigvals = np.maximum(eigvals, 0.0)
        eps = self.zca_epsilon * eigvals.mean()
        if eps <= 0:
            # Zero variance everywhere (or zca_epsilon=0 on degenerate data): there is
            # nothing to whiten; keep the (centred) data as they are.
            eps = 1.0 if eigvals.mean() == 0 else 0.0
        with np.errstate(divide="ignore"):
            inv_sqrt = np.where(eigvals + eps > 0, 1.0 / np.sqrt(eigvals + eps), 0.0)
        return self._set_map(mean, (eigvecs * inv_sqrt) @ eigvecs.T)

    def _set_map(self, mean, matrix):
        self.mean_ = mean
        self.matrix_ = matrix
        self.n_features_in_ = mean.shape[0]
        return self

    def apply(self, X):
        """The map on already validated ``X``, in the dtype of ``X`` (no checks)."""
        Z = X - self.mean_.astype(X.dtype, copy=False)
        if self.matrix_ is None:
            return Z
        if self.method == "standardize":
            # The matrix is diagonal: scale the columns instead of a p x p product.
            return Z * np.diag(self.matrix_).astype(X.dtype, copy=False)
        return Z @ self.matrix_.astype(X.dtype, copy=False)

    def transform(self, X):
        """Apply the map, in the dtype of ``X`` (float32 stays float32).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features)
            ``(X - mean_) @ matrix_``.
        """
        check_is_fitted(self)
        check_numeric_dtype(X, "X")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        check_magnitude(X, "X")
        return self.apply(X)
