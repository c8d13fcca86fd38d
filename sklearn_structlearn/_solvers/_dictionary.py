"""Dictionary solver: block coordinate descent over atoms on sufficient statistics.

With the codes fixed, the smooth part of the layer objective only depends on
``B = A^T A / n`` (n_components x n_components) and ``E = A^T X / n``
(n_components x n_features) -- the statistics online dictionary learning accumulates.
As a function of one atom ``D_k`` it is ``B_kk / 2 ||D_k||^2 - <D_k, E_k - sum_{j != k} B_kj D_j>``,
an isotropic quadratic, so the exact minimiser under the connectivity penalty and the unit
ball is a prox step with step ``1 / B_kk``:

    D_k <- P_ball( S_{lam / B_kk}( D_k + R_k / B_kk ) ),   R = E - B D,

where ``S`` is the (input-)group soft-threshold and ``P_ball`` the projection on
``||D_k|| <= 1``. Thresholding then projecting is the exact prox of the sum of the two
(the group norm is positively homogeneous and the ball projection is a rescaling).
Each atom update is an exact block minimisation, so the objective never increases.
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def dictionary_bcd(B, R, D, lam, order, ptr, n_passes, tol):
    """Update ``D`` in place (and keep ``R = E - B D`` in step); returns passes done.

    ``order``/``ptr`` describe input groups (``order[ptr[h]:ptr[h+1]]``); an empty ``order``
    means one group per input (L1). Atoms with ``B_kk == 0`` (unused by every code) are
    left alone: the caller decides whether to re-seed them.
    Stops when the largest change of an atom in a pass is below ``tol``.
    """
    K, p = D.shape
    u = np.empty(p, dtype=np.float64)
    delta = np.empty(p, dtype=np.float64)
    elementwise = order.shape[0] == 0
    done = 0
    for _ in range(n_passes):
        done += 1
        max_change = 0.0
        for k in range(K):
            bkk = B[k, k]
            if bkk <= 0.0:
                continue
            for j in range(p):
                u[j] = D[k, j] + R[k, j] / bkk
            thresh = lam / bkk
            if thresh > 0.0:
                if elementwise:
                    for j in range(p):
                        x = u[j]
                        if x > thresh:
                            u[j] = x - thresh
                        elif x < -thresh:
                            u[j] = x + thresh
                        else:
                            u[j] = 0.0
                else:
                    for h in range(ptr.shape[0] - 1):
                        sq = 0.0
                        for t in range(ptr[h], ptr[h + 1]):
                            sq += u[order[t]] ** 2
                        norm = np.sqrt(sq)
                        scale = 0.0
                        if norm > thresh:
                            scale = 1.0 - thresh / norm
                        for t in range(ptr[h], ptr[h + 1]):
                            u[order[t]] *= scale
            sq = 0.0
            for j in range(p):
                sq += u[j] * u[j]
            norm = np.sqrt(sq)
            inv = 1.0
            if norm > 1.0:
                inv = 1.0 / norm
            change = 0.0
            for j in range(p):
                new = u[j] * inv
                delta[j] = new - D[k, j]
                D[k, j] = new
                change = max(change, abs(delta[j]))
            if change > 0.0:
                # R = E - B D changes by -B[:, k] delta^T
                for m in range(K):
                    bmk = B[m, k]
                    if bmk != 0.0:
                        for j in range(p):
                            R[m, j] -= bmk * delta[j]
            max_change = max(max_change, change)
        if max_change <= tol:
            break
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
