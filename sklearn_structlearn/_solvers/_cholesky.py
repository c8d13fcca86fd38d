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
    of H is read. Left-looking, row by row: row j of U is row j of H minus the rows above
    it, each scaled by its entry in column j, four rows per pass over row j -- a quarter
    of the loads and stores of one axpy per row (faster than the right-looking form by
    1.3x at 12 coordinates, 1.6-1.9x at 28-64, the sizes of a group solver's supports).
    ``diag`` (length >= m) is scratch for the original diagonal.
    """
    for j in range(m):
        diag[j] = H[j, j]
    for j in range(m):
        row = H[j, j:m]
        n = m - j
        k = 0
        while k + 4 <= j:
            u0 = H[k, j]
            u1 = H[k + 1, j]
            u2 = H[k + 2, j]
            u3 = H[k + 3, j]
            r0 = H[k, j:m]
            r1 = H[k + 1, j:m]
            r2 = H[k + 2, j:m]
            r3 = H[k + 3, j:m]
            for t in range(n):
                row[t] -= (u0 * r0[t] + u1 * r1[t]) + (u2 * r2[t] + u3 * r3[t])
            k += 4
        while k < j:
            axpy(row, -H[k, j], H[k, j:m], n)
            k += 1
        pivot = row[0]
        if not pivot > 1e-12 * diag[j]:
            return False
        ujj = np.sqrt(pivot)
        row[0] = ujj
        inv = 1.0 / ujj
        for t in range(1, n):
            row[t] *= inv
    return True


# Both triangular solves take two unknowns per pass: the second is found from the first
# directly, then one pass updates the rest with both, half the passes over y of one axpy
# per unknown (10-25% faster for 7-80 unknowns, measured).
@njit(cache=True, nogil=True)
def forward_solve(U, m, y):
    """In place: y <- U^{-T} y (column-oriented: reads contiguous rows of U)."""
    s = 0
    while s + 2 <= m:
        v0 = y[s] / U[s, s]
        v1 = (y[s + 1] - v0 * U[s, s + 1]) / U[s + 1, s + 1]
        y[s] = v0
        y[s + 1] = v1
        row0 = U[s, s + 2:m]
        row1 = U[s + 1, s + 2:m]
        tail = y[s + 2:m]
        for t in range(m - s - 2):
            tail[t] -= v0 * row0[t] + v1 * row1[t]
        s += 2
    if s < m:
        y[s] /= U[s, s]


# Back substitution by rows is a dot product per row, a serial chain of reductions and
# divisions; by columns (an update down columns of U, strided) the chain is one division
# and one multiply-add per unknown: 1.6-2x faster for the supports of 8-64 atoms the code
# solvers factor (measured), but its strided reads fall out of the cache beyond ~80 rows,
# where the row form (vectorised by reassociation) wins.
_COLUMN_BACKWARD_MAX = 80


@njit(cache=True, nogil=True)
def backward_solve(U, m, y):
    """In place: y <- U^{-1} y."""
    if m > _COLUMN_BACKWARD_MAX:
        _backward_solve_rows(U, m, y)
        return
    s = m - 1
    while s >= 1:
        v1 = y[s] / U[s, s]
        v0 = (y[s - 1] - U[s - 1, s] * v1) / U[s - 1, s - 1]
        y[s] = v1
        y[s - 1] = v0
        for t in range(s - 1):
            y[t] -= U[t, s - 1] * v0 + U[t, s] * v1
        s -= 2
    if s == 0:
        y[0] /= U[0, 0]


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _backward_solve_rows(U, m, y):
    """``backward_solve`` as a dot product per row (contiguous reads of U)."""
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
        # np.hypot (a libm call that guards against overflow and underflow) was a third
        # of a deletion's time; x^2 + y^2 is part of a column's sum of squares of U, so
        # bounded by a diagonal entry of H: only a pathological scale needs the guard
        rho_sq = x * x + y * y
        rho = np.sqrt(rho_sq) if 1e-280 < rho_sq < 1e280 else np.hypot(x, y)
        inv = 1.0 / rho
        c = x * inv
        s = y * inv
        U[i, i] = rho
        U[i + 1, i] = 0.0
        upper = U[i, i + 1:m - 1]
        lower = U[i + 1, i + 1:m - 1]
        for t in range(m - 2 - i):
            u = upper[t]
            v = lower[t]
            upper[t] = c * u + s * v
            lower[t] = c * v - s * u
