"""Dense Cholesky factors that follow a changing active set.

An active-set solver changes its support by a few atoms at a time; refactorising the
restricted Gram matrix at every change costs O(m^3), updating its factor O(m^2). The factor
is the upper triangle ``U`` of ``H = U^T U`` stored row-major, so that every loop below runs
along contiguous rows (the forward solve in its column-oriented "axpy" form, the Givens
rotations of a deletion on two adjacent rows).

Inner loops run over zero-based slices (``row = U[s, s + 1:m]``): written with offset
indices (``for t in range(s + 1, m)``) LLVM does not vectorise them (measured 2.5x slower).

All functions work on the leading ``m x m`` block of preallocated square buffers.

Compile time (the kernels of ``_lasso`` and ``_group`` call these): Numba compiles a callee
once per distinct argument types, and while it types a caller's loop a counter set to a
constant (``m = 0``) is briefly ``Literal[int](0)``: every function it reaches is then
compiled for that literal as well (2-4 s of the cold compile, measured in
``benchmarks/RESULTS.md`` section 11). Counters that reach a call are therefore
initialised ``np.int64(0)``, and no kernel helper has a default argument (an omitted
argument is a type of its own).
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def axpy(y, a, x, n):
    """y[:n] += a * x[:n] (y and x zero-based views)."""
    for t in range(n):
        y[t] += a * x[t]


@njit(cache=True, nogil=True)
def cholesky_in_place(H, m, diag):
    """Upper Cholesky factor U (H = U^T U) of H[:m, :m] in its upper triangle.

    Returns False if H is not (numerically) positive definite. Only the upper triangle
    of H is read. Right-looking, row by row: every update is an axpy over contiguous
    entries of two rows. ``diag`` (length >= m) is scratch for the original diagonal.
    """
    for j in range(m):
        diag[j] = H[j, j]
    for j in range(m):
        s = H[j, j]
        if not s > 1e-12 * diag[j]:
            return False
        ujj = np.sqrt(s)
        H[j, j] = ujj
        inv = 1.0 / ujj
        rowj = H[j, j + 1:m]
        for k in range(m - j - 1):
            rowj[k] *= inv
        for i in range(j + 1, m):
            uji = H[j, i]
            if uji != 0.0:
                axpy(H[i, i:m], -uji, H[j, i:m], m - i)
    return True


@njit(cache=True, nogil=True)
def forward_solve(U, m, y):
    """In place: y <- U^{-T} y (column-oriented: reads contiguous rows of U)."""
    for s in range(m):
        v = y[s] / U[s, s]
        y[s] = v
        axpy(y[s + 1:m], -v, U[s, s + 1:m], m - s - 1)


# the back substitution is a dot product per row: reassociation lets LLVM vectorise it
@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def backward_solve(U, m, y):
    """In place: y <- U^{-1} y."""
    for s in range(m - 1, -1, -1):
        row = U[s, s + 1:m]
        tail = y[s + 1:m]
        v = 0.0
        for t in range(m - s - 1):
            v += row[t] * tail[t]
        y[s] = (y[s] - v) / U[s, s]


@njit(cache=True, nogil=True)
def cholesky_append(U, m, column, diagonal, floor):
    """Grow the factor of an m x m matrix H by one row and column.

    ``column`` holds ``H[:m, m]`` on entry (it is overwritten by ``U^{-T}`` of it) and
    ``diagonal`` is ``H[m, m]``. The new pivot is ``diagonal - ||U^{-T} column||^2``; where
    rounding leaves it below ``floor`` (a new atom in the span of the others) it is raised
    to ``floor``: the factor then belongs to H plus a tiny diagonal bump on that atom,
    which keeps every solve defined (the solver's steps stay descent directions and its
    stopping test, the duality gap, never reads the factor). Returns True when the pivot
    was kept as computed.
    """
    forward_solve(U, m, column)
    s = diagonal
    for t in range(m):
        s -= column[t] * column[t]
        U[t, m] = column[t]
    exact = s > floor
    U[m, m] = np.sqrt(s if exact else floor)
    return exact


@njit(cache=True, nogil=True, inline="always")
def copy_row(dst, src, n):
    """dst[:n] = src[:n] (zero-based views, not overlapping).

    The loop instead of a slice assignment: Numba's array ``setitem`` from an array pulls
    in its generic broadcasting code (3-4 s of the cold compile, measured)."""
    for t in range(n):
        dst[t] = src[t]


@njit(cache=True, nogil=True)
def shift_left(row, n, by):
    """row[t] = row[t + by] for t < n (row a zero-based view)."""
    for t in range(n):
        row[t] = row[t + by]


@njit(cache=True, nogil=True)
def cholesky_delete(U, m, k):
    """Remove row and column ``k`` from the factor of an m x m matrix (now m - 1).

    Deleting column k of U leaves an upper Hessenberg block in rows k..m-1; Givens
    rotations of adjacent rows restore the triangle (O(m (m - k)) work)."""
    for i in range(m):
        shift_left(U[i, k:m], m - 1 - k, 1)
    for i in range(k, m - 1):
        x = U[i, i]
        y = U[i + 1, i]
        rho = np.hypot(x, y)
        c = x / rho
        s = y / rho
        U[i, i] = rho
        U[i + 1, i] = 0.0
        upper = U[i, i + 1:m - 1]
        lower = U[i + 1, i + 1:m - 1]
        for t in range(m - 2 - i):
            u = upper[t]
            v = lower[t]
            upper[t] = c * u + s * v
            lower[t] = c * v - s * u
