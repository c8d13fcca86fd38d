"""Duality gap of one code problem, from the Gram-form residual (see ``objective.py``)."""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def gap_and_primal(c, xsq, a, r, alpha, gs, positive):
    """Duality gap and primal value from ``c = D x``, ``a`` and ``r = c - G a``.

    O(n_components): ``||x - D^T a||^2 = ||x||^2 - a.c - a.r``, and the dual point is the
    residual rescaled so that ``max_g ||(D theta)_g|| <= alpha``.
    """
    K = a.shape[0]
    a_c = 0.0
    a_r = 0.0
    penalty = 0.0
    dual_norm_sq = 0.0
    for g in range(K // gs):
        asq = 0.0
        rsq = 0.0
        for j in range(g * gs, (g + 1) * gs):
            aj = a[j]
            if aj != 0.0:
                a_c += aj * c[j]
                a_r += aj * r[j]
                asq += aj * aj
            rj = r[j]
            if positive and rj < 0.0:
                rj = 0.0
            rsq += rj * rj
        penalty += np.sqrt(asq)
        if rsq > dual_norm_sq:
            dual_norm_sq = rsq
    res_sq = max(xsq - a_c - a_r, 0.0)  # ||x - D^T a||^2
    primal = 0.5 * res_sq + alpha * penalty
    dual_norm = np.sqrt(dual_norm_sq)
    s = 1.0
    if dual_norm > alpha:
        s = alpha / dual_norm
    dual = s * (xsq - a_c) - 0.5 * s * s * res_sq
    return primal - dual, primal
