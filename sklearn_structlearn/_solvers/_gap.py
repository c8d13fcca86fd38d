"""Duality gap of one code problem, from the Gram-form residual (see ``objective.py``).

The kernels gather, in one pass over the atoms that also scans for violators, the sums
``a.c``, ``a.r``, the penalty and the dual norm of the residual; ``gap_from_sums`` turns
them into the gap. It is the one place this formula lives in the kernels.
"""

from numba import njit


@njit(cache=True, nogil=True, inline="always")
def gap_from_sums(xsq, a_c, a_r, penalty, dual_norm, alpha):
    """Duality gap and primal value from ``c = D x``, ``a`` and ``r = c - G a``.

    ``a_c = a.c``, ``a_r = a.r``, ``penalty = sum_g ||a_g||`` and ``dual_norm =
    max_g ||r_g||`` (positive parts for non-negative codes). O(1):
    ``||x - D^T a||^2 = ||x||^2 - a.c - a.r``, and the dual point is the residual
    rescaled so that ``max_g ||(D theta)_g|| <= alpha``.
    """
    res_sq = max(xsq - a_c - a_r, 0.0)  # ||x - D^T a||^2
    primal = 0.5 * res_sq + alpha * penalty
    s = 1.0
    if dual_norm > alpha:
        s = alpha / dual_norm
    dual = s * (xsq - a_c) - 0.5 * s * s * res_sq
    return primal - dual, primal
