"""The group soft-threshold: the proximal operator of ``t * ||v||_2`` (+ ``v >= 0``)."""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def group_soft_threshold(v, threshold, positive):
    """Return ``argmin_w 1/2 ||w - v||^2 + threshold * ||w||_2`` (with ``w >= 0`` if positive).

    The Euclidean norm shrinks the whole block towards zero (``w = v * max(0, 1 - t/||v||)``),
    so a group switches on and off as one unit. With the non-negativity constraint the
    prox is the same shrinkage applied to ``max(v, 0)`` (the two operators commute because
    the group norm is radial). The one-element case is the ordinary soft-threshold.
    """
    out = np.empty(v.shape[0], dtype=np.float64)
    sq = 0.0
    for j in range(v.shape[0]):
        x = v[j]
        if positive and x < 0.0:
            x = 0.0
        out[j] = x
        sq += x * x
    norm = np.sqrt(sq)
    scale = 0.0
    if norm > threshold:
        scale = 1.0 - threshold / norm
    for j in range(v.shape[0]):
        out[j] *= scale
    return out
