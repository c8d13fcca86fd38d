"""Code solver: block coordinate descent over groups of atoms, in Gram form.

For one sample the code problem is ``min_a 1/2 ||x - D^T a||^2 + alpha sum_g ||a_g||``.
With ``G = D D^T`` and ``c = D x`` computed once by BLAS for all samples, the solver never
touches the n_features-dimensional data again: it keeps ``r = c - G a`` (minus the
gradient) up to date, so that testing a group costs O(group_size) and changing it costs
O(n_components * group_size).

Each outer iteration is
1. the duality gap (O(n_components) from r, see ``objective.py``): stop when it is below
   ``tol`` times the objective;
2. a working set: the current support plus the groups violating the optimality conditions
   the most (as many as the support holds, at least 8 -- a doubling strategy). A full sweep
   would switch on every coherent atom at once (natural-image dictionaries are coherent);
   growing the set from the worst violators keeps it near the true support;
3. the problem restricted to the working set: a proximal sweep over its groups finds its
   support, then damped Newton steps on that support, where the objective is smooth (a
   quadratic plus the norms of non-zero groups), finish the values with a few Cholesky
   solves of size |support| -- what coordinate descent would crawl through on coherent
   atoms. Steps are clipped where coordinates would cross zero (they leave the support,
   as in feature-sign search) and backtracked until the objective decreases (Armijo); a
   singular restricted Hessian falls back to sweeps;
4. ``r`` recomputed from scratch from the sparse codes, which also wipes rounding drift.

Group steps are proximal steps with step ``1 / L_g`` (``L_g`` = largest eigenvalue of the
diagonal block ``G_gg``), which is exact coordinate minimisation when ``group_size == 1``.
Every step (sweep or Newton) decreases the objective, so warm starts are safe, and the
duality gap -- not the heuristics -- decides when a row is solved. Arithmetic is float64 whatever
the input dtype, so float32 data still reaches tight gaps. Samples are independent and are
solved in parallel (``prange`` over chunks of rows, each chunk with its own buffers).
"""

import numba
import numpy as np
from numba import njit, prange

from .._threads import _PARALLEL_LAUNCH
from ._cholesky import cholesky_in_place
from ._gap import gap_and_primal
from ._lasso import lasso_row

# Cap on the fallback sweeps on the support; the gap test of the next outer iteration is
# what guarantees convergence, this only bounds wasted work.
_MAX_ACTIVE_SWEEPS = 64
_MAX_NEWTON_STEPS = 50
# working-set growth: at least this many new groups per outer iteration
_MIN_GROWTH = 8
# sweep + Newton rounds on one working set before the residual is refreshed everywhere
_SUBPROBLEM_ROUNDS = 4
# Newton systems larger than this fall back to restricted sweeps (bounds per-thread memory)
_MAX_NEWTON_SIZE = 512


@njit(cache=True, nogil=True, inline="always")
def _update_group(g, gs, a, r, L, alpha, positive, buf):
    """Proximal step on group g; returns sum_j L_g * delta_j^2 (the size of the move).

    Leaves the per-coordinate changes in ``buf`` so the caller can update ``r``."""
    start = g * gs
    lg = L[g]
    sq = 0.0
    for j in range(gs):
        u = a[start + j] + r[start + j] / lg
        if positive and u < 0.0:
            u = 0.0
        buf[j] = u
        sq += u * u
    norm = np.sqrt(sq)
    thresh = alpha / lg
    scale = 0.0
    if norm > thresh:
        scale = 1.0 - thresh / norm
    moved = 0.0
    for j in range(gs):
        new = buf[j] * scale
        delta = new - a[start + j]
        buf[j] = delta
        if delta != 0.0:
            a[start + j] = new
            moved += lg * delta * delta
    return moved


@njit(cache=True, nogil=True, inline="always")
def _support_penalty(a, idx, m, gs, direction, step):
    """Group penalty sum_g ||a_g + step * direction_g|| over the support ``idx[:m]``.

    ``idx`` is ordered by group, so the norms are summed group by group in one pass."""
    penalty = 0.0
    s = 0
    while s < m:
        g = idx[s] // gs
        sq = 0.0
        while s < m and idx[s] // gs == g:
            v = a[idx[s]] + step * direction[s]
            sq += v * v
            s += 1
        penalty += np.sqrt(sq)
    return penalty


@njit(cache=True, nogil=True)
def _newton_phase(G, a, r, L, alpha, gs, positive, n_active, active, idx, H, grad, d, Hd,
                  gnorm, budget):
    """Damped Newton steps on the objective restricted to the current support.

    ``r = c - G a`` must be exact on the support on entry; it is kept exact there. Groups
    that leave the support are removed from ``active``; returns the new number ``n`` of
    active groups, or ``-1 - n`` when the restricted Hessian is not positive definite (the
    caller falls back to sweeps on the ``n`` groups left in ``active``).
    """
    for _ in range(_MAX_NEWTON_STEPS):
        if gs > 1:
            # Newton only creeps towards the kink of a group whose optimum is zero (its
            # curvature alpha/||a_g|| blows up): zero such groups by their exact prox test
            for ia in range(n_active):
                g = active[ia]
                lg = L[g]
                sq = 0.0
                for j in range(g * gs, (g + 1) * gs):
                    u = a[j] + r[j] / lg
                    if positive and u < 0.0:
                        u = 0.0
                    sq += u * u
                if sq * lg * lg <= alpha * alpha:
                    for k in range(g * gs, (g + 1) * gs):
                        ak = a[k]
                        if ak != 0.0:
                            for ib in range(n_active):
                                h = active[ib]
                                for m in range(h * gs, (h + 1) * gs):
                                    r[m] += G[k, m] * ak
                            a[k] = 0.0
        # free coordinates: the whole of each non-zero group, except that coordinates at
        # zero stay put where the objective has a kink there (lasso, non-negative codes)
        m = 0
        kept = 0
        for ia in range(n_active):
            g = active[ia]
            sq = 0.0
            for k in range(g * gs, (g + 1) * gs):
                sq += a[k] * a[k]
            if sq == 0.0:
                continue  # the group left the support (a capped step zeroed it)
            active[kept] = g
            kept += 1
            gnorm[g] = np.sqrt(sq)
            for k in range(g * gs, (g + 1) * gs):
                if a[k] != 0.0 or (gs > 1 and not positive):
                    idx[m] = k
                    m += 1
        n_active = kept
        if m == 0:
            return n_active
        if m > H.shape[0]:
            return -1 - n_active
        for s in range(m):
            k = idx[s]
            g = k // gs
            grad[s] = alpha * a[k] / gnorm[g] - r[k]
            # upper triangle only: the factorisation reads nothing else
            for t in range(s, m):
                H[s, t] = G[k, idx[t]]
            if gs > 1:
                # Hessian of alpha ||a_g||: alpha / ||a_g|| (I - u u^T), u = a_g / ||a_g||
                w = alpha / gnorm[g]
                for t in range(s, m):
                    kt = idx[t]
                    if kt // gs == g:
                        H[s, t] -= w * a[k] * a[kt] / (gnorm[g] * gnorm[g])
                H[s, s] += w
        # a relative ridge keeps the factorisation alive when the support is linearly
        # dependent (more atoms than features): the step then runs along the null space
        # until a coordinate reaches zero and leaves -- the feature-sign answer to it
        ridge = 0.0
        for s in range(m):
            ridge = max(ridge, H[s, s])
        for s in range(m):
            H[s, s] += 1e-9 * ridge
        if not cholesky_in_place(H, m, Hd):  # Hd is free until the step is chosen
            return -1 - n_active
        # d = -H^{-1} grad: U^T y = -grad (column-oriented: contiguous rows of U), U d = y
        for s in range(m):
            d[s] = -grad[s]
        for s in range(m):
            v = d[s] / H[s, s]
            d[s] = v
            for t in range(s + 1, m):
                d[t] -= H[s, t] * v
        for s in range(m - 1, -1, -1):
            v = d[s]
            for t in range(s + 1, m):
                v -= H[s, t] * d[t]
            d[s] = v / H[s, s]
        decrement = 0.0  # grad^T H^{-1} grad: twice the predicted decrease
        for s in range(m):
            decrement -= grad[s] * d[s]
        if decrement <= budget:
            return n_active  # the gradient is already at rounding level
        # longest step before a kinked coordinate reaches zero
        t_max = 1.0
        block = -1
        if gs == 1 or positive:
            for s in range(m):
                k = idx[s]
                if a[k] * d[s] < 0.0:
                    ts = -a[k] / d[s]
                    if ts < t_max:
                        t_max = ts
                        block = s
        penalty0 = 0.0
        for ia in range(n_active):
            penalty0 += gnorm[active[ia]]
        if block >= 0:
            # Try the full Newton step with every crossing coordinate clipped to zero: it
            # drops many coordinates at once where capped steps would drop one per Cholesky.
            # Kept only if it decreases the objective enough; else fall back to the capped step.
            for s in range(m):
                k = idx[s]
                if a[k] * d[s] < 0.0 and -a[k] / d[s] <= 1.0:
                    grad[s] = -a[k]
                else:
                    grad[s] = d[s]
            change = 0.0
            for s in range(m):
                k = idx[s]
                v = 0.0
                for t in range(m):
                    v += G[k, idx[t]] * grad[t]
                Hd[s] = v
                change += (0.5 * v - r[k]) * grad[s]
            change += alpha * (_support_penalty(a, idx, m, gs, grad, 1.0) - penalty0)
            if change <= -1e-4 * decrement:
                for s in range(m):
                    k = idx[s]
                    if grad[s] == -a[k]:
                        a[k] = 0.0
                    else:
                        a[k] += grad[s]
                    r[k] -= Hd[s]
                continue
        slope = 0.0  # directional derivative of the quadratic part
        curvature = 0.0
        for s in range(m):
            k = idx[s]
            v = 0.0
            for t in range(m):
                v += G[k, idx[t]] * d[t]
            Hd[s] = v
            slope -= r[k] * d[s]
            curvature += d[s] * v
        step = t_max
        accepted = False
        for _ls in range(40):
            penalty = _support_penalty(a, idx, m, gs, d, step)
            change = step * slope + 0.5 * step * step * curvature + alpha * (penalty - penalty0)
            if change <= -1e-4 * step * decrement:
                accepted = True
                break
            step *= 0.5
        if not accepted:
            return n_active
        for s in range(m):
            k = idx[s]
            a[k] += step * d[s]
            r[k] -= step * Hd[s]
        if step == t_max and block >= 0:
            a[idx[block]] = 0.0  # lands on the kink: leaves the support exactly
        elif gs == 1 and step == 1.0:
            return n_active  # a full step minimises the quadratic exactly: nothing left
    return n_active


@njit(cache=True, nogil=True)
def _sweep(G, a, r, L, alpha, gs, positive, buf, groups, n_groups_in):
    """One proximal BCD pass over ``groups``; r is kept exact on those groups' coordinates.

    Returns the progress (sum of L_g ||delta_g||^2)."""
    progress = 0.0
    for ia in range(n_groups_in):
        g = groups[ia]
        if L[g] <= 0.0:
            continue  # dead atoms: zero Gram block, their codes stay zero
        progress += _update_group(g, gs, a, r, L, alpha, positive, buf)
        for j in range(gs):
            d = buf[j]
            if d != 0.0:
                k = g * gs + j
                for ib in range(n_groups_in):
                    h = groups[ib]
                    for m in range(h * gs, (h + 1) * gs):
                        r[m] -= G[k, m] * d
    return progress


@njit(cache=True, nogil=True)
def _refresh_residual(G, c, a, r, gs, support, n_support, targets, n_targets):
    """r = c - G a on the coordinates of the ``targets`` groups (a is zero off ``support``)."""
    for it in range(n_targets):
        h = targets[it]
        for m in range(h * gs, (h + 1) * gs):
            v = c[m]
            for ia in range(n_support):
                g = support[ia]
                for k in range(g * gs, (g + 1) * gs):
                    ak = a[k]
                    if ak != 0.0:
                        v -= G[k, m] * ak
            r[m] = v


@njit(cache=True, nogil=True)
def _solve_one(G, c, xsq, a, r, L, alpha, gs, positive, max_iter, tol, buf, active,
               work, all_groups, violation, idx, H, grad, direction, Hd, gnorm):
    K = a.shape[0]
    n_groups = K // gs
    # a warm start may carry codes of atoms that have died since (zero atoms): the sweeps
    # skip dead groups, so zero them here or their penalty would stay forever
    n_active = 0
    for g in range(n_groups):
        nonzero = False
        for j in range(g * gs, (g + 1) * gs):
            if L[g] <= 0.0 or G[j, j] <= 0.0:
                a[j] = 0.0  # a zero atom's only optimal code is 0; prox steps only shrink it
            elif a[j] != 0.0:
                nonzero = True
        if nonzero:
            active[n_active] = g
            n_active += 1
    _refresh_residual(G, c, a, r, gs, active, n_active, all_groups, n_groups)
    gap = np.inf
    primal = 0.0
    it = 0
    while True:
        # r is exact on every coordinate here
        gap, primal = gap_and_primal(c, xsq, a, r, alpha, gs, positive)
        if gap <= tol * primal or it == max_iter:
            break
        it += 1
        # 1. working set: the support plus the groups that violate optimality the most,
        #    at least _MIN_GROWTH of them and as many as the support holds (doubling), so
        #    coherent atoms are not all switched on at once by a full sweep
        n_active = 0
        n_viol = 0
        for g in range(n_groups):
            sq = 0.0
            rsq = 0.0
            for j in range(g * gs, (g + 1) * gs):
                sq += a[j] * a[j]
                rj = r[j]
                if positive and rj < 0.0:
                    rj = 0.0
                rsq += rj * rj
            if sq != 0.0:
                active[n_active] = g
                n_active += 1
            elif L[g] > 0.0 and rsq > alpha * alpha:
                violation[n_viol] = rsq
                work[n_viol] = g
                n_viol += 1
        n_add = min(n_viol, max(n_active, _MIN_GROWTH))
        if n_add < n_viol:
            chosen = work[np.argsort(-violation[:n_viol])[:n_add]]  # a copy: work is rewritten
            for t in range(n_add):
                work[n_active + t] = chosen[t]
        else:
            for t in range(n_add - 1, -1, -1):
                work[n_active + t] = work[t]
        for t in range(n_active):
            work[t] = active[t]
        n_work = n_active + n_add
        # 2. solve the problem restricted to the working set: sweeps find its support,
        #    Newton steps finish the values on that support
        for _round in range(_SUBPROBLEM_ROUNDS):
            progress = _sweep(G, a, r, L, alpha, gs, positive, buf, work, n_work)
            n_active = 0
            for t in range(n_work):
                g = work[t]
                for j in range(g * gs, (g + 1) * gs):
                    if a[j] != 0.0:
                        active[n_active] = g
                        n_active += 1
                        break
            remaining = _newton_phase(G, a, r, L, alpha, gs, positive, n_active, active, idx, H,
                                      grad, direction, Hd, gnorm, 1e-6 * tol * primal)
            if remaining < 0:
                # singular restricted Hessian: plain sweeps on the support instead
                n_active = -1 - remaining
                for _s in range(_MAX_ACTIVE_SWEEPS):
                    if _sweep(G, a, r, L, alpha, gs, positive, buf, active,
                              n_active) <= 0.1 * tol * primal:
                        break
            else:
                n_active = remaining
            _refresh_residual(G, c, a, r, gs, active, n_active, work, n_work)
            if progress <= 0.1 * tol * primal:
                break
        # 3. exact r everywhere from the (sparse) codes, which also wipes rounding drift
        _refresh_residual(G, c, a, r, gs, active, n_active, all_groups, n_groups)
    return it, gap, primal


@njit(cache=True, nogil=True, parallel=True)
def encode_bcd(G, C, x_sqnorm, codes, L, alpha, group_size, positive, max_iter, tol,
               n_chunks, n_iter, gaps, primals):
    """Solve the code problem for every row of ``C = X D^T`` (in place in ``codes``).

    Parameters
    ----------
    G : (K, K) array, ``D D^T``.
    C : (n, K) array, ``X D^T``.
    x_sqnorm : (n,) float64, ``||x_i||^2``.
    codes : (n, K) array, warm start on entry, solution on exit (same dtype as C).
    L : (K // group_size,) float64, largest eigenvalue of each diagonal block of G.
    alpha, tol : float; stop a row when ``gap <= tol * primal``.
    n_chunks : int, rows are split in this many contiguous chunks, one task each.
    n_iter, gaps, primals : (n,) outputs: outer iterations, final gap and primal per row.
    """
    n, K = C.shape
    n_groups = K // group_size
    for chunk in prange(n_chunks):
        a = np.empty(K, dtype=np.float64)
        r = np.empty(K, dtype=np.float64)
        buf = np.empty(group_size, dtype=np.float64)
        active = np.empty(n_groups, dtype=np.int64)
        c = np.empty(K, dtype=np.float64)
        m_max = min(K, _MAX_NEWTON_SIZE)
        idx = np.empty(K, dtype=np.int64)
        H = np.empty((m_max, m_max), dtype=np.float64)
        grad = np.empty(K, dtype=np.float64)
        d = np.empty(K, dtype=np.float64)
        Hd = np.empty(K, dtype=np.float64)
        gnorm = np.empty(n_groups, dtype=np.float64)
        work = np.empty(n_groups, dtype=np.int64)
        violation = np.empty(n_groups, dtype=np.float64)
        all_groups = np.arange(n_groups)
        for i in range(chunk * n // n_chunks, (chunk + 1) * n // n_chunks):
            for j in range(K):
                a[j] = codes[i, j]
                c[j] = C[i, j]
            it, gap, primal = _solve_one(G, c, x_sqnorm[i], a, r, L, alpha, group_size,
                                         positive, max_iter, tol, buf, active, work,
                                         all_groups, violation, idx, H, grad, d, Hd, gnorm)
            for j in range(K):
                codes[i, j] = a[j]
            n_iter[i] = it
            gaps[i] = gap
            primals[i] = primal


@njit(cache=True, nogil=True, parallel=True)
def encode_lasso(G, C, x_sqnorm, codes, alpha, positive, max_iter, tol, cap, n_chunks,
                 n_iter, gaps, primals):
    """``encode_bcd`` for ``group_size == 1`` (see ``_lasso.py``); ``cap`` bounds the support."""
    n, K = C.shape
    gdiag = np.empty(K, dtype=np.float64)
    for j in range(K):
        gdiag[j] = G[j, j]
    for chunk in prange(n_chunks):
        a = np.empty(K, dtype=np.float64)
        r = np.empty(K, dtype=np.float64)
        c = np.empty(K, dtype=np.float64)
        S = np.empty(cap + 1, dtype=np.int64)
        where = np.empty(K, dtype=np.int64)
        theta = np.empty(cap + 1, dtype=np.float64)
        x = np.empty(cap + 1, dtype=np.float64)
        rs = np.empty(cap + 1, dtype=np.float64)
        U = np.empty((cap + 1, cap + 1), dtype=np.float64)
        Gs = np.empty((cap + 1, cap + 1), dtype=np.float64)
        col = np.empty(cap + 1, dtype=np.float64)
        g = np.empty(cap + 1, dtype=np.float64)
        d = np.empty(cap + 1, dtype=np.float64)
        delta = np.empty(cap + 1, dtype=np.float64)
        Hd = np.empty(cap + 1, dtype=np.float64)
        viol = np.empty(K, dtype=np.float64)
        cand = np.empty(K, dtype=np.int64)
        for i in range(chunk * n // n_chunks, (chunk + 1) * n // n_chunks):
            for j in range(K):
                a[j] = codes[i, j]
                c[j] = C[i, j]
            it, gap, primal = lasso_row(G, gdiag, c, x_sqnorm[i], a, r, alpha, positive, max_iter,
                                        tol, cap, S, where, theta, x, rs, U, Gs, col, g, d,
                                        delta, Hd, viol, cand)
            for j in range(K):
                codes[i, j] = a[j]
            n_iter[i] = it
            gaps[i] = gap
            primals[i] = primal


def group_lipschitz(gram, group_size):
    """Largest eigenvalue of each diagonal block of the Gram matrix (the group step sizes).

    Blocks whose atoms are all zero get 0, which the kernel reads as "dead, skip"."""
    gram = np.asarray(gram, dtype=np.float64)
    K = gram.shape[0]
    if group_size == 1:
        L = np.diag(gram).copy()
    else:
        n_groups = K // group_size
        idx = np.arange(n_groups)
        blocks = gram.reshape(n_groups, group_size, n_groups, group_size)[idx, :, idx, :]
        L = np.ascontiguousarray(np.linalg.eigvalsh(blocks)[:, -1])
    scale = L.max() if L.size else 0.0
    # eigvalsh of an all-zero block can come back as -1e-17: treat such blocks as dead
    L[L <= 1e-12 * max(scale, np.finfo(np.float64).tiny)] = 0.0
    return L


def solve_codes(X, dictionary, alpha, group_size=1, positive=False, init=None,
                max_iter=1000, tol=1e-6, gram=None, correlations=None, sqnorms=None):
    """Python driver of the code kernel: BLAS products, then ``encode_bcd``.

    Threads are whatever the caller set (see ``_threads.thread_limits``). Returns
    ``codes`` (dtype of X) and per-row ``n_iter``, ``gaps`` and ``primals``. The kernel
    only needs ``X D^T`` and the row norms ``||x_i||^2``: a caller holding a sparse ``X``
    passes both (``correlations``, ``sqnorms``), and ``X`` itself is then not read
    (except for ``alpha == 0``, solved by dense least squares).
    """
    dtype = X.dtype
    n = X.shape[0]
    K = dictionary.shape[0]
    # the two products are the unavoidable cost; everything after is O(K * nnz) per row
    # G in float64 whatever the data dtype: a float32-rounded Gram matrix of an
    # over-complete dictionary can have negative eigenvalues, along which the Gram-form
    # objective is unbounded below. It is only K x K, so this costs nothing.
    D64 = np.asarray(dictionary, dtype=np.float64)
    G = D64 @ D64.T if gram is None else gram
    C = X @ dictionary.T if correlations is None else correlations
    G = np.ascontiguousarray(G, dtype=np.float64)
    C = np.ascontiguousarray(C, dtype=dtype)
    x_sqnorm = (np.einsum("ij,ij->i", X, X, dtype=np.float64) if sqnorms is None
                else np.ascontiguousarray(sqnorms, dtype=np.float64))
    if init is None:
        codes = np.zeros((n, K), dtype=dtype)
    else:
        codes = np.array(init, dtype=dtype, order="C", copy=True)
    L = group_lipschitz(G, group_size)
    n_iter = np.zeros(n, dtype=np.int64)
    if alpha == 0 and n:
        # No penalty: least squares (non-negative for positive codes). The duality gap is
        # useless here (the dual feasible set shrinks to theta with D theta = 0), so solve
        # it directly: minimum-norm least squares, or NNLS row by row.
        codes = _unpenalised_codes(X, dictionary, positive)
        residual = np.asarray(X, dtype=np.float64) - codes @ np.asarray(dictionary, np.float64)
        primals = 0.5 * np.einsum("ij,ij->i", residual, residual)
        return codes, n_iter, np.zeros(n), primals
    gaps = np.zeros(n, dtype=np.float64)
    primals = np.zeros(n, dtype=np.float64)
    # several chunks per thread balance rows that need more iterations than others
    # (the thread count is read here: calling get_num_threads inside a kernel blocks caching)
    n_chunks = max(1, min(n, 8 * numba.get_num_threads()))
    if n:
        with _PARALLEL_LAUNCH:
          if group_size == 1:
            cap = int(min(K, dictionary.shape[1] + 64))
            encode_lasso(G, C, x_sqnorm, codes, float(alpha), bool(positive), int(max_iter),
                         float(tol), cap, n_chunks, n_iter, gaps, primals)
          else:
            encode_bcd(G, C, x_sqnorm, codes, L, float(alpha), int(group_size), bool(positive),
                       int(max_iter), float(tol), n_chunks, n_iter, gaps, primals)
    return codes, n_iter, gaps, primals


def _unpenalised_codes(X, dictionary, positive):
    """Codes for alpha = 0: least squares (minimum norm) or non-negative least squares."""
    D64 = np.asarray(dictionary, dtype=np.float64)
    X64 = np.asarray(X, dtype=np.float64)
    if not positive:
        codes = np.linalg.lstsq(D64.T, X64.T, rcond=None)[0].T
    else:
        from scipy.optimize import nnls

        codes = np.array([nnls(D64.T, x)[0] for x in X64])
    return np.ascontiguousarray(codes, dtype=X.dtype)

