"""Dictionary solver: block coordinate descent over atoms on sufficient statistics.

With the codes fixed, the smooth part of the layer objective only depends on
``B = A^T A / n`` (n_components x n_components) and ``E = A^T X / n``
(n_components x n_features) -- the statistics online dictionary learning accumulates.
As a function of one atom ``D_k`` it is ``B_kk / 2 ||D_k||^2 - <D_k, E_k - sum_{j != k} B_kj D_j>``,
an isotropic quadratic, so the exact minimiser under the connectivity penalty and the unit
ball is a prox step with step ``1 / B_kk``:

    D_k <- P_ball( S_{lam / B_kk}( D_k + R_k / B_kk ) ),   R = E - B D,

where ``S`` is the (input-)group soft-threshold (``_prox.group_shrink``, the same operator
as the code solvers') and ``P_ball`` the projection on ``||D_k|| <= 1``. Thresholding then
projecting is the exact prox of the sum of the two (the group norm is positively
homogeneous and the ball projection is a rescaling). Each atom update is an exact block
minimisation, so the objective never increases.

Sparse atoms: after an update, ``R`` changes by ``-B[:, k] delta^T`` with ``delta`` the
change of atom k, which is zero outside the old and new supports of the atom. For the
local atoms a connectivity penalty learns (fan-in 5-25%), updating ``R`` on those inputs
only costs ``O(K nnz(delta))`` instead of ``O(K n_features)`` -- the bulk of the work
(95% of it on a K = 1024 Fashion-MNIST dictionary).
"""

import numpy as np
from numba import njit

from ._cholesky import axpy
from ._prox import group_shrink, shrink_factor


@njit(cache=True, nogil=True)
def dictionary_bcd(B, R, D, lam, order, ptr, n_passes, tol):
    """Update ``D`` in place (and keep ``R = E - B D`` in step); returns passes done.

    ``order``/``ptr`` describe input groups (``order[ptr[h]:ptr[h+1]]``); an empty ``order``
    means one group per input (L1). Atoms with ``B_kk == 0`` (unused by every code) are
    left alone: the caller decides whether to re-seed them.
    Stops when the largest change of an atom in a pass is below ``tol``.

    ``R`` is worked on transposed (one row per input): the update of an atom then touches
    one contiguous row of length K per changed input -- few inputs for a sparse atom --
    where the K x n_features layout would touch every row at scattered columns.
    """
    K, p = D.shape
    RT = np.ascontiguousarray(R.T)
    u = np.empty(p, dtype=np.float64)
    delta = np.empty(p, dtype=np.float64)
    changed = np.empty(p, dtype=np.int64)
    buf = np.empty(p, dtype=np.float64)
    elementwise = order.shape[0] == 0
    done = 0
    for _ in range(n_passes):
        done += 1
        max_change = 0.0
        for k in range(K):
            bkk = B[k, k]
            if bkk <= 0.0:
                continue
            Dk = D[k]
            for j in range(p):
                u[j] = Dk[j] + RT[j, k] / bkk
            thresh = lam / bkk
            if thresh > 0.0:
                if elementwise:
                    for j in range(p):
                        u[j] *= shrink_factor(abs(u[j]), thresh)
                else:
                    for h in range(ptr.shape[0] - 1):
                        size = ptr[h + 1] - ptr[h]
                        for t in range(size):
                            buf[t] = u[order[ptr[h] + t]]
                        group_shrink(buf[:size], thresh, False)
                        for t in range(size):
                            u[order[ptr[h] + t]] = buf[t]
            sq = 0.0
            for j in range(p):
                sq += u[j] * u[j]
            norm = np.sqrt(sq)
            inv = 1.0
            if norm > 1.0:
                inv = 1.0 / norm  # projection on the unit ball
            change = 0.0
            n_changed = 0
            for j in range(p):
                new = u[j] * inv
                dj = new - Dk[j]
                if dj != 0.0:
                    delta[n_changed] = dj
                    changed[n_changed] = j
                    n_changed += 1
                    Dk[j] = new
                    change = max(change, abs(dj))
            # R = E - B D changes by -B[:, k] delta^T: for each changed input j, its row of
            # R^T moves along column k of B (= row k, B is symmetric)
            Bk = B[k]
            for t in range(n_changed):
                axpy(RT[changed[t]], -delta[t], Bk, K)
            max_change = max(max_change, change)
        if max_change <= tol:
            break
    # a loop, not ``R[:, :] = RT.T``: Numba's generic array setitem costs ~4 s of cold
    # compile (benchmarks/RESULTS.md section 11)
    for k in range(K):
        Rk = R[k]
        for j in range(p):
            Rk[j] = RT[j, k]
    return done


def update_dictionary(dictionary, gram_codes, codes_data, lam, order, ptr, n_passes=5, tol=1e-6):
    """One dictionary step from the sufficient statistics (float64, returns a new array).

    ``gram_codes`` = ``A^T A / n``, ``codes_data`` = ``A^T X / n``; see the module docstring.
    """
    D = np.array(dictionary, dtype=np.float64, order="C", copy=True)
    B = np.ascontiguousarray(gram_codes, dtype=np.float64)
    R = np.ascontiguousarray(codes_data, dtype=np.float64) - B @ D
    dictionary_bcd(B, R, D, float(lam), order, ptr, int(n_passes), float(tol))
    return D
