"""Rows of a dense array or a scipy.sparse matrix: the few operations the fits need.

Samples are rows. A scipy.sparse ``X`` is kept in CSR (CSC is converted, O(nnz), never
densified) so that row slicing and ``X @ D^T`` stay sparse; only small blocks of rows
(a subsample, rows to re-seed units) are ever made dense.
"""

import numpy as np
import scipy.sparse as sp

# scipy.sparse formats accepted as data
ACCEPT_SPARSE = ("csr", "csc")


def as_rows(X):
    """CSR for sparse ``X`` (row slicing and ``X @ D^T`` stay sparse), ``X`` otherwise."""
    return X.tocsr() if sp.issparse(X) and X.format != "csr" else X


def row_sqnorms(X):
    """``||x_i||^2`` per row, in float64, without densifying a sparse ``X``."""
    if sp.issparse(X):
        return np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).ravel()
    return np.einsum("ij,ij->i", X, X, dtype=np.float64)


def total_sqnorm(X):
    """``sum_i ||x_i||^2`` in float64 (dense: the same einsum as ever, bit for bit)."""
    if sp.issparse(X):
        return float(X.multiply(X).sum(dtype=np.float64))
    return float(np.einsum("ij,ij->", X, X, dtype=np.float64))


def dense_rows(X, rows):
    """Dense copy of a few rows of ``X`` (only ever a small block of a sparse ``X``)."""
    block = X[rows]
    return block.toarray() if sp.issparse(block) else block


# Above this fraction of non-zero codes the dense BLAS products are cheaper than the
# sparse ones (measured: 20,000 x 1,024 codes at 3% non-zero, 784 inputs, one thread:
# A^T A 0.17 s sparse vs 0.55 s dense, A^T X 0.21 s vs 0.94 s).
_SPARSE_CODES_DENSITY = 0.05


def code_statistics(codes, X):
    """The dictionary statistics ``(A^T A, A^T X)`` of the codes ``A``, in float64.

    ``X`` dense or sparse. Codes are mostly zeros (a few percent active): below
    ``_SPARSE_CODES_DENSITY`` non-zeros both products are computed from ``A`` in CSR
    form, whose cost grows with the non-zeros instead of the full ``n x K`` block.
    """
    density = np.count_nonzero(codes) / max(codes.size, 1)
    if density < _SPARSE_CODES_DENSITY:
        A = sp.csr_matrix(codes, dtype=np.float64)
        AtA = (A.T @ A).toarray()
        AtX = A.T @ X
        AtX = AtX.toarray() if sp.issparse(AtX) else np.asarray(AtX, dtype=np.float64)
        return AtA, AtX
    A = codes.astype(np.float64, copy=False)
    if sp.issparse(X):
        return A.T @ A, np.asarray((X.T @ A).T)
    return A.T @ A, A.T @ X
