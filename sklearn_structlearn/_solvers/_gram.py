"""Rows of the Gram matrix ``G = D D^T``, dense, sparse, or computed on first use.

The code solvers keep ``r = c - G a`` and refresh it from the support's rows of ``G``; they
read a row of ``G`` only once its atom is in a support. Besides ``G`` (a K x K float64
array) they get ``grows``, a tuple of arrays describing where the rows come from::

    (have, gptr, gidx, gval, indptr, indices, data, colptr, rowidx, colval)

- ``have`` (uint8, one flag per row): the row is in ``G``. All ones for a dense ``G``.
- ``gptr, gidx, gval``: a CSR copy of ``G``, or empty. Local atoms make ``G`` sparse (only
  atoms with overlapping receptive fields interact); with the CSR rows a refresh costs the
  non-zeros of those rows instead of ``n_components`` each.
- ``indptr, indices, data`` and ``colptr, rowidx, colval``: a sparse D in CSR and CSC form
  (sorted indices), or empty. Then ``G`` is a buffer of the calling thread, whose rows are
  computed on first use (``fill_gram_row``): only the atoms that ever enter a support
  (about 30% of 4,096 local atoms on 2,000 Fashion-MNIST images) cost a row, and rows
  never touched cost no memory.

Indices are int64 and values float64 in every case, so each kernel is compiled once.
"""

from numba import njit

from ._cholesky import axpy


@njit(cache=True, nogil=True, inline="always")
def subtract_gram_row(G, grows, k, v, r):
    """r -= v * G[k, :] (from the CSR rows of G when given)."""
    gptr, gidx, gval = grows[1], grows[2], grows[3]
    if gptr.shape[0] == 0:
        axpy(r, -v, G[k], r.shape[0])
    else:
        for t in range(gptr[k], gptr[k + 1]):
            r[gidx[t]] -= v * gval[t]


@njit(cache=True, nogil=True, inline="always")
def fill_gram_row(G, grows, j):
    """Compute row j of ``G = D D^T`` into ``G[j]`` unless it is there already (inlined:
    the check is all most calls do)."""
    if not grows[0][j]:
        _compute_gram_row(G, grows, j)


@njit(cache=True, nogil=True)
def _compute_gram_row(G, grows, j):
    """Row j of ``G`` into ``G[j]``, and its flag set.

    The row accumulates ``D[j, p] * D[:, p]`` over the inputs p of atom j, touching only
    the atoms that share an input with it. ``G[i, j]`` and ``G[j, i]`` sum the same
    products in the same order (shared inputs in increasing order), so the rows form an
    exactly symmetric matrix, the same bits whichever thread computes them.
    """
    indptr, indices, data = grows[4], grows[5], grows[6]
    colptr, rowidx, colval = grows[7], grows[8], grows[9]
    row = G[j]
    for i in range(row.shape[0]):
        row[i] = 0.0
    for t in range(indptr[j], indptr[j + 1]):
        p = indices[t]
        v = data[t]
        for u in range(colptr[p], colptr[p + 1]):
            row[rowidx[u]] += v * colval[u]
    grows[0][j] = 1


@njit(cache=True, nogil=True)
def gram_diagonal(G, grows, out):
    """The diagonal of G (squared atom norms) into ``out`` without computing rows: for an
    absent row, the squares summed in the order ``fill_gram_row`` adds them (same bits)."""
    have, indptr, data = grows[0], grows[4], grows[6]
    for j in range(out.shape[0]):
        if have[j]:
            out[j] = G[j, j]
        else:
            s = 0.0
            for t in range(indptr[j], indptr[j + 1]):
                s += data[t] * data[t]
            out[j] = s
