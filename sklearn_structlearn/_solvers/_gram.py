"""Rows of the Gram matrix ``G = D D^T``, dense or sparse.

Local atoms make ``G`` sparse: only atoms with overlapping receptive fields interact. The
code solvers keep ``r = c - G a`` and refresh it from the support's rows of ``G``; with a
CSR copy of ``G`` (``gptr``, ``gidx``, ``gval``; empty arrays mean "dense only") a refresh
costs the non-zeros of those rows instead of ``n_components`` each.
"""

from numba import njit

from ._cholesky import axpy


@njit(cache=True, nogil=True, inline="always")
def subtract_gram_row(G, gptr, gidx, gval, k, v, r):
    """r -= v * G[k, :] (from the sparse rows when given)."""
    if gptr.shape[0] == 0:
        axpy(r, -v, G[k], r.shape[0])
    else:
        for t in range(gptr[k], gptr[k + 1]):
            r[gidx[t]] -= v * gval[t]
