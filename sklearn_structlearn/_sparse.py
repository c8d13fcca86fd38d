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


def codes_t_times(codes64, X):
    """``A^T X`` (the dictionary statistic) with ``X`` dense or sparse, in float64."""
    if sp.issparse(X):
        return np.asarray((X.T @ codes64).T)
    return codes64.T @ X
