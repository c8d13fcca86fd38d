"""The coding problem as a function: group sparse codes on a fixed dictionary.

:func:`~sklearn_structlearn.group_sparse_encode` is to this package what
:func:`sklearn.decomposition.sparse_encode` is to scikit-learn: the code solver, checked
and with its warnings, for any dictionary. The estimators above
(:class:`~sklearn_structlearn.GroupSparseCodingLayer`, the "auto" penalty rules) call
``solve_codes_any`` and the two warning helpers directly on inputs they have already
checked. The objective is written out in :mod:`sklearn_structlearn.objective`; the kernel
is ``_solvers._encode``.
"""

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array

from ._param_validation import N_JOBS, int_in, real_in, validate_params
from ._solvers._encode import solve_codes
from ._sparse import ACCEPT_SPARSE, as_rows, row_sqnorms
from ._threads import thread_limits
from ._validation import check_encode_arrays, check_memory, check_numeric_dtype, format_bytes
from .exceptions import ZeroCodesWarning
from .objective import alpha_max

__all__ = ["group_sparse_encode"]


def solve_codes_any(X, dictionary, alpha, group_size, positive, init, max_iter, tol):
    """``solve_codes`` for dense or sparse ``X``.

    The kernel reads only ``X D^T`` and ``||x_i||^2``; for a sparse ``X`` both are
    computed from the sparse matrix (cost O(nnz * n_components)), so ``X`` is never
    densified -- except for ``alpha == 0``, an unpenalised least-squares problem solved
    densely.
    """
    if not sp.issparse(X):
        return solve_codes(X, dictionary, alpha, group_size, positive, init, max_iter, tol)
    if alpha == 0:
        return solve_codes(X.toarray(), dictionary, alpha, group_size, positive, init,
                           max_iter, tol)
    correlations = np.asarray(X @ dictionary.T, dtype=X.dtype)
    return solve_codes(X, dictionary, alpha, group_size, positive, init, max_iter, tol,
                       correlations=correlations, sqnorms=row_sqnorms(X))


def warn_all_zero(codes, X, dictionary, alpha, group_size, positive, what, stacklevel=3):
    """ZeroCodesWarning when ``alpha`` switched off every code of data that are not zero."""
    # all-zero codes are the exact optimum iff alpha >= alpha_max; the extra product is
    # only paid in that (degenerate) case
    if codes.size == 0 or alpha == 0 or np.any(codes):
        return
    amax = alpha_max(X, dictionary, group_size, positive)
    if amax > 0:
        # just below alpha_max the zero codes are within the solver's tolerance of optimal
        where = "at or above" if alpha >= amax else "within the solver's tolerance of"
        warnings.warn(
            f"{what}: alpha={alpha:.6g} is {where} alpha_max={amax:.6g}, so every code is "
            "zero and the outputs carry no information. Use a smaller alpha (or \"auto\").",
            ZeroCodesWarning,
            stacklevel=stacklevel,
        )


def warn_unconverged(gaps, primals, tol, max_iter, what, stacklevel=3):
    """ConvergenceWarning when some rows did not reach the relative duality gap ``tol``."""
    # written as "not converged" so that NaN gaps (a numerical failure) also warn
    unconverged = ~(gaps <= tol * primals + 1e-12 * np.maximum(primals, 1e-300))
    if np.any(unconverged):
        worst = float(np.nanmax(np.where(np.isfinite(gaps), gaps / np.maximum(primals, 1e-300),
                                         np.inf)))
        warnings.warn(
            f"{what}: {int(unconverged.sum())} of {gaps.shape[0]} codes did not reach the relative "
            f"duality gap tol={tol:g} within max_iter={max_iter} iterations (worst gap/objective "
            f"{worst:.2e}). Increase max_iter, or loosen tol.",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )


def _check_encode_data(X, dictionary, group_size, positive, init):
    """The arrays of a code problem: X (CSR if sparse), dictionary, init of matching shape."""
    X, dictionary = check_encode_arrays(X, dictionary, group_size=group_size,
                                        accept_sparse=ACCEPT_SPARSE)
    n_atoms = dictionary.shape[0]
    gram = 8 * n_atoms**2  # the solver's Gram matrix, float64
    check_memory(gram + 2 * X.shape[0] * n_atoms * X.dtype.itemsize,
                 f"a dictionary of {n_atoms} atoms (its Gram matrix alone is "
                 f"{format_bytes(gram)}; the correlations and codes of {X.shape[0]} rows "
                 "beside it)",
                 "code on fewer atoms, or fewer rows at a time.")
    X = as_rows(X)
    if init is not None:
        check_numeric_dtype(init, "init")
        init = check_array(init, dtype=X.dtype, input_name="init")
        if init.shape != (X.shape[0], dictionary.shape[0]):
            raise ValueError(
                f"init must be of shape (n_samples, n_components) = "
                f"{(X.shape[0], dictionary.shape[0])}, got {init.shape}."
            )
        if positive and np.any(init < 0):
            init = np.maximum(init, 0)
    return X, dictionary, init


@validate_params(
    {
        "X": ["array-like", "sparse matrix"],
        "dictionary": ["array-like"],
        "alpha": [real_in(0)],
        "group_size": [int_in(1)],
        "positive": ["boolean"],
        "init": ["array-like", None],
        "max_iter": [int_in(1)],
        "tol": [real_in(0)],
        "n_jobs": N_JOBS,
    },
    prefer_skip_nested_validation=True,
)
def group_sparse_encode(
    X,
    dictionary,
    *,
    alpha,
    group_size=1,
    positive=False,
    init=None,
    max_iter=1000,
    tol=1e-6,
    n_jobs=None,
):
    """Group sparse codes of every row of ``X`` on a fixed dictionary.

    Solves, independently for every row ``x`` of ``X``::

        min_a  1/2 ||x - dictionary^T a||_2^2 + alpha * sum_g ||a_g||_2

    where the ``a_g`` are contiguous groups of ``group_size`` coefficients. With
    ``group_size=1`` this is the lasso with the same ``alpha`` convention as
    :func:`sklearn.decomposition.sparse_encode` (``algorithm="lasso_cd"``).

    The solver is block coordinate descent in Gram form with an active-set phase, run in
    parallel over rows; it stops a row when its duality gap falls below ``tol`` times its
    objective, which bounds the relative suboptimality by ``tol``.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Data. float32 input gives float32 codes (arithmetic is float64 internally).
        A scipy.sparse CSR/CSC matrix is not densified: only ``X @ dictionary.T``
        (dense, n_samples x n_components, like the codes) and the row norms are
        computed from it (``alpha=0`` is the exception: dense least squares).
    dictionary : array-like of shape (n_components, n_features)
        The atoms, one per row. They need not be normalised.
    alpha : float
        Penalty on the group norms (>= 0).
    group_size : int, default=1
        Number of consecutive atoms per group; must divide ``n_components``.
    positive : bool, default=False
        Constrain the codes to be non-negative.
    init : array-like of shape (n_samples, n_components), default=None
        Warm start (e.g. the codes of a previous, close problem).
    max_iter : int, default=1000
        Maximum number of outer iterations per row.
    tol : float, default=1e-6
        Relative duality-gap tolerance: a row stops when ``gap <= tol * objective``.
    n_jobs : int, default=None
        Threads for the solver and the BLAS products. ``None`` uses all cores available to
        Numba (like scikit-learn's OpenMP-based estimators); ``-1`` also means all.

    Returns
    -------
    codes : ndarray of shape (n_samples, n_components)
        The codes, of the dtype of ``X``.

    Warns
    -----
    ConvergenceWarning
        When some rows did not reach ``tol`` within ``max_iter`` iterations.
    ~sklearn_structlearn.exceptions.ZeroCodesWarning
        When ``alpha >= alpha_max(X, dictionary)`` switches off every code of non-zero
        data.

    See Also
    --------
    sklearn.decomposition.sparse_encode : the lasso / OMP equivalent in scikit-learn.
    alpha_max : the smallest ``alpha`` giving all-zero codes.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn import group_sparse_encode
    >>> rng = np.random.default_rng(0)
    >>> D = rng.normal(size=(8, 20))
    >>> X = rng.normal(size=(3, 20))
    >>> codes = group_sparse_encode(X, D, alpha=2.0, group_size=2)
    >>> codes.shape
    (3, 8)
    >>> pairs = codes.reshape(3, 4, 2)
    >>> bool(np.all((pairs == 0).all(axis=2) | (pairs != 0).all(axis=2)))
    True
    """
    # plain Python scalars: the kernels are compiled for these types only
    alpha, group_size, positive = float(alpha), int(group_size), bool(positive)
    max_iter, tol = int(max_iter), float(tol)
    X, dictionary, init = _check_encode_data(X, dictionary, group_size, positive, init)
    with thread_limits(n_jobs):
        codes, _, gaps, primals = solve_codes_any(
            X, dictionary, alpha, group_size, positive, init, max_iter, tol
        )
    # stacklevel 4: the warning points at the caller of group_sparse_encode (past the
    # parameter-validation wrapper)
    warn_unconverged(gaps, primals, tol, max_iter, "group_sparse_encode", stacklevel=4)
    warn_all_zero(codes, X, dictionary, alpha, group_size, positive, "group_sparse_encode",
                  stacklevel=4)
    return codes
