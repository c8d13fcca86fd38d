"""The group soft-threshold: the proximal operator of ``t * ||v||_2`` (+ ``v >= 0``).

Defined once for every kernel (``shrink_factor``): the code solvers step groups of codes
with it and the dictionary solver thresholds the inputs (or groups of inputs) of an atom
with it; ``group_shrink`` applies it in place to a contiguous view, and
``group_soft_threshold`` returns a new array, for callers and tests.
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def shrink_factor(norm, threshold):
    """The group soft-threshold as a factor: ``prox(v) = v * shrink_factor(||v||, t)``.

    ``argmin_w 1/2 ||w - v||^2 + t ||w||_2`` is ``v * max(0, 1 - t / ||v||)``: the
    Euclidean norm shrinks the whole block towards zero, so a group switches on and off
    as one unit. The one formula every kernel applies (a group of one input or atom is
    the ordinary soft-threshold: ``x * max(0, 1 - t / |x|)``).
    """
    if norm > threshold:
        return 1.0 - threshold / norm
    return 0.0


@njit(cache=True, nogil=True, inline="always")
def group_shrink(v, threshold, positive):
    """In place: ``v <- argmin_w 1/2 ||w - v||^2 + threshold * ||w||_2`` (``w >= 0`` if positive).

    With the non-negativity constraint the prox is the same shrinkage applied to
    ``max(v, 0)`` (the two operators commute because the group norm is radial).
    Returns the norm of the result (0 when the group is switched off).
    """
    sq = 0.0
    for j in range(v.shape[0]):
        x = v[j]
        if positive and x < 0.0:
            x = 0.0
            v[j] = 0.0
        sq += x * x
    norm = np.sqrt(sq)
    scale = shrink_factor(norm, threshold)
    for j in range(v.shape[0]):
        v[j] *= scale
    return norm * scale


@njit(cache=True, nogil=True)
def group_soft_threshold(v, threshold, positive):
    """Return ``argmin_w 1/2 ||w - v||^2 + threshold * ||w||_2`` (with ``w >= 0`` if positive).

    A new array; see ``group_shrink`` for the in-place operator the kernels use.
    """
    out = np.empty(v.shape[0], dtype=np.float64)
    for j in range(v.shape[0]):
        out[j] = v[j]
    group_shrink(out, threshold, positive)
    return out
