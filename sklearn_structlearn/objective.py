"""The objective of one layer, in one place, in plain NumPy.

Everything the solvers optimise is defined here, so that tests (and curious readers) can
check the Numba kernels against an obviously-right formula. The group norm, its
proximal operator and the pooling are defined once, in ``_groups.py``.

One layer, for inputs ``X`` (n_samples x n_features), dictionary ``D``
(n_components x n_features, one row per unit) and codes ``A`` (n_samples x n_components),
units split into contiguous groups of ``group_size``::

    min_{D, A}  1/n sum_i [ 1/2 ||x_i - D^T a_i||^2 + alpha * sum_g ||a_{i,g}||_2 ]
                + connectivity_alpha * sum_k sum_h ||D_{k,h}||_2      s.t. ||D_k||_2 <= 1

(optionally ``A >= 0``). With ``D`` fixed the problem splits into one *code problem* per
sample, a group lasso::

    min_a  P(a) = 1/2 ||x - D^T a||^2 + alpha * sum_g ||a_g||_2

whose Fenchel dual is ``max_theta  theta^T x - 1/2 ||theta||^2`` subject to
``||(D theta)_g||_2 <= alpha`` for every group (``||max((D theta)_g, 0)||_2 <= alpha`` when
the codes are non-negative). The duality gap at ``a`` with the rescaled residual
``theta = s (x - D^T a)`` bounds the suboptimality ``P(a) - P(a*)`` and is the solver's
stopping criterion.
"""

import numpy as np

from ._groups import group_blocks as _group_blocks
from ._groups import group_norms, input_group_pointers
from ._param_validation import int_in, validate_params
from ._validation import check_encode_arrays

__all__ = [
    "alpha_max",
    "code_duality_gap",
    "code_kkt_violation",
    "code_objective",
    "connectivity_penalty",
    "group_norms",
    "layer_objective",
]


def code_objective(X, dictionary, codes, alpha, group_size=1):
    """Per-sample primal value ``P(a_i)`` of the code problem, shape (n_samples,)."""
    X = np.asarray(X, dtype=np.float64)
    residual = X - np.asarray(codes, dtype=np.float64) @ np.asarray(dictionary, dtype=np.float64)
    return 0.5 * np.einsum("ij,ij->i", residual, residual) + alpha * group_norms(
        codes, group_size
    ).sum(axis=1)


def _dual_norm(correlations, group_size, positive):
    """max_g ||r_g|| (or ||max(r_g, 0)|| for non-negative codes), per row."""
    if positive:
        correlations = np.maximum(correlations, 0.0)
    return group_norms(correlations, group_size).max(axis=1)


def code_duality_gap(X, dictionary, codes, alpha, group_size=1, positive=False):
    """Per-sample duality gap of the code problem (>= suboptimality, 0 at the optimum).

    The dual point is the residual ``x - D^T a`` rescaled into the dual feasible set.
    """
    X = np.asarray(X, dtype=np.float64)
    D = np.asarray(dictionary, dtype=np.float64)
    A = np.asarray(codes, dtype=np.float64)
    theta = X - A @ D
    primal = 0.5 * np.einsum("ij,ij->i", theta, theta) + alpha * group_norms(A, group_size).sum(1)
    dual_norm = _dual_norm(theta @ D.T, group_size, positive)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(dual_norm > alpha, alpha / dual_norm, 1.0)
    theta *= scale[:, None]
    dual = np.einsum("ij,ij->i", theta, X) - 0.5 * np.einsum("ij,ij->i", theta, theta)
    return primal - dual


def code_kkt_violation(X, dictionary, codes, alpha, group_size=1, positive=False):
    """Per-sample largest violation of the optimality (KKT) conditions of the code problem.

    With ``r = D (x - D^T a)`` (minus the gradient of the smooth part), optimality is
    ``r_g = alpha * a_g / ||a_g||`` for non-zero groups and ``||r_g|| <= alpha`` for zero
    groups. With ``positive``: on the support ``r_j = alpha * a_j / ||a_g||``, off the
    support ``r_j <= 0`` inside a non-zero group, and ``||max(r_g, 0)|| <= alpha`` for a zero
    group. The violation is measured in the units of ``r`` (compare it with ``alpha``).
    """
    X = np.asarray(X, dtype=np.float64)
    D = np.asarray(dictionary, dtype=np.float64)
    A = np.asarray(codes, dtype=np.float64)
    R = (X - A @ D) @ D.T
    norms = group_norms(A, group_size)
    Ab = _group_blocks(A, group_size)
    active = norms > 0
    safe = np.where(active, norms, 1.0)[..., None]
    target = alpha * Ab / safe
    if positive:
        if np.any(A < 0):
            return np.full(A.shape[0], np.inf)
        Rb = _group_blocks(R, group_size)
        stationarity = np.where(Ab > 0, np.abs(Rb - target), np.maximum(Rb, 0.0))
        active_violation = stationarity.max(axis=2)
        R = np.maximum(R, 0.0)
    else:
        active_violation = np.abs(_group_blocks(R, group_size) - target).max(axis=2)
    inactive_violation = np.maximum(group_norms(R, group_size) - alpha, 0.0)
    return np.where(active, active_violation, inactive_violation).max(axis=1)


@validate_params(
    {
        "X": ["array-like", "sparse matrix"],
        "dictionary": ["array-like"],
        "group_size": [int_in(1)],
        "positive": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def alpha_max(X, dictionary, group_size=1, positive=False):
    """Smallest ``alpha`` for which every code of every row of ``X`` is exactly zero.

    At ``a = 0`` the KKT conditions read ``||(D x)_g|| <= alpha`` for every group, so
    ``alpha_max = max_i max_g ||(D x_i)_g||`` (positive parts only for non-negative codes).

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Data to code.
    dictionary : array-like of shape (n_components, n_features)
        The atoms ``D``, one per row.
    group_size : int, default=1
        Number of consecutive atoms per group; must divide ``n_components``.
    positive : bool, default=False
        Whether the codes are constrained to be non-negative.

    Returns
    -------
    alpha_max : float
        The smallest code penalty giving all-zero codes (0.0 for empty ``X``).

    See Also
    --------
    group_sparse_encode : The code solver whose penalty this bounds.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn import alpha_max, group_sparse_encode
    >>> rng = np.random.default_rng(0)
    >>> X, D = rng.normal(size=(5, 4)), rng.normal(size=(6, 4))
    >>> amax = alpha_max(X, D, group_size=2)
    >>> bool(np.all(group_sparse_encode(X, D, alpha=amax * 1.0001, group_size=2) == 0))
    True
    """
    if np.ndim(X) == 2 and np.shape(X)[0] == 0:
        return 0.0  # no rows: no code can be non-zero
    X, D = check_encode_arrays(X, dictionary, group_size=group_size, dtype=np.float64,
                               accept_sparse=("csr", "csc"))
    # np.asarray: X @ D.T of a scipy.sparse X is dense already (never densifies X)
    return float(_dual_norm(np.asarray(X @ D.T), group_size, positive).max())


def connectivity_penalty(dictionary, input_groups=None):
    """``sum_k sum_h ||D_{k,h}||_2`` over input groups (the L1 norm of D by default)."""
    D = np.asarray(dictionary, dtype=np.float64)
    if input_groups is None:
        return float(np.abs(D).sum())
    # the groups exactly as the dictionary kernel sees them (labels of mixed types too)
    order, ptr = input_group_pointers(input_groups, D.shape[1])
    return float(
        sum(np.linalg.norm(D[:, order[ptr[h]:ptr[h + 1]]], axis=1).sum()
            for h in range(len(ptr) - 1))
    )


def layer_objective(
    X, dictionary, codes, alpha, connectivity_alpha=0.0, group_size=1, input_groups=None
):
    """The full layer objective written at the top of this module (a float)."""
    return float(
        code_objective(X, dictionary, codes, alpha, group_size).mean()
        + connectivity_alpha * connectivity_penalty(dictionary, input_groups)
    )
