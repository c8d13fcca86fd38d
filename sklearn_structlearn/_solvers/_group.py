"""Group-sparse codes (``group_size > 1``): an active set of groups, Newton on its support.

For one sample the problem is ``min_a 1/2 a^T G a - c^T a + alpha sum_g ||a_g||`` (``a >= 0``
optionally), with ``G = D D^T`` and ``c = D x``. The solver mirrors the lasso one
(``_lasso.py``):

1. ``r = c - G a`` is exact on every atom at the start of an outer iteration, where the
   duality gap (``objective.py``) decides whether the row is solved;
2. the groups violating optimality the most (``||r_g|| > alpha``) enter, a quarter of the
   support's size and at least ``_MIN_GROWTH``; each takes one exact proximal step (the
   group soft-threshold with step ``1 / L_g``, ``L_g`` the largest eigenvalue of ``G_gg``),
   which decreases the objective and leaves it non-zero, where Newton can start;
3. on the support, where the objective is smooth (a quadratic plus the norms of non-zero
   groups), damped Newton steps with the exact Hessian ``G_SS + alpha/||a_g|| (I - u u^T)``
   finish the values; a group whose optimum is zero is switched off by its exact prox test
   (Newton would only creep towards the kink); steps are backtracked until the objective
   decreases (Armijo), and clipped where a non-negative coordinate would cross zero;
4. ``r`` is refreshed on every atom from the sparse codes.

The support's Newton steps stop once the gradient on it is small enough for the duality
gap (``max_g ||g_g|| <= tol * alpha / 10``, as for the lasso). The curvature term changes
with ``a`` at every step, so unlike the lasso's the factor is rebuilt each step; the steps
are few because each outer iteration starts from the previous support's solution.
"""

import numpy as np
from numba import njit

from ._cholesky import (axpy, backward_solve, cholesky_in_place, copy_row, forward_solve,
                        shift_left)
from ._gap import gap_from_sums
from ._gram import fill_gram_row, subtract_gram_row
from ._prox import group_shrink
from ._select import select_largest

_GROWTH = 0.25
_MIN_GROWTH = 4
_MAX_NEWTON_STEPS = 50
_INEXACT = 0.1
# Newton steps in a row that do not halve the gradient before sweeps take over
_STALL = 3
# proximal sweeps on the support when Newton stalls or its Hessian is not positive definite
# (the next outer iteration returns to Newton)
_MAX_FALLBACK_SWEEPS = 8


# reassociation vectorises the sums (the gap is a bound, its rounding order is free)
@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _gap_and_violators(c, xsq, a, r, alpha, gs, positive, gwhere, L, viol, cand):
    """Duality gap and primal value (``_gap.gap_from_sums``) fused with the scan for
    groups off the support with ``||r_g|| > alpha`` (positive parts for non-negative
    codes) into ``viol`` (their squared norms) / ``cand``. Returns (gap, primal,
    n_violators).

    In passes without a branch per atom: the sums over atoms (a zero code adds exact
    zeros), the groups' squared norms of ``r`` into ``viol``, their max by ``v if v > m
    else m`` (Numba's ``max`` in a reduction is not vectorised), then the violators'
    list, written over ``viol`` (entry g is read before the list, never longer than g,
    reaches it). 2x faster than one pass branching on every atom (measured, K = 256)."""
    K = a.shape[0]
    a_c = 0.0
    a_r = 0.0
    for j in range(K):
        a_c += a[j] * c[j]
        a_r += a[j] * r[j]
    n_groups = K // gs
    penalty = 0.0
    for g in range(n_groups):
        asq = 0.0
        rsq = 0.0
        for j in range(g * gs, (g + 1) * gs):
            asq += a[j] * a[j]
            rj = r[j]
            if positive:
                rj = rj if rj > 0.0 else 0.0
            rsq += rj * rj
        if asq != 0.0:
            penalty += np.sqrt(asq)
        viol[g] = rsq
    dual_norm_sq = 0.0
    for g in range(n_groups):
        v = viol[g]
        dual_norm_sq = v if v > dual_norm_sq else dual_norm_sq
    alpha_sq = alpha * alpha
    n_viol = 0
    for g in range(n_groups):
        rsq = viol[g]
        if rsq > alpha_sq and gwhere[g] < 0 and L[g] > 0.0:
            viol[n_viol] = rsq
            cand[n_viol] = g
            n_viol += 1
    gap, primal = gap_from_sums(xsq, a_c, a_r, penalty, np.sqrt(dual_norm_sq), alpha)
    return gap, primal, n_viol


@njit(cache=True, nogil=True)
def _refresh(G, grows, c, a, r, gs, sg, q):
    """r = c - G a on every atom (a is zero off the support groups ``sg[:q]``)."""
    for i in range(r.shape[0]):
        r[i] = c[i]
    for t in range(q):
        g = sg[t]
        for k in range(g * gs, (g + 1) * gs):
            ak = a[k]
            if ak != 0.0:
                subtract_gram_row(G, grows, k, ak, r)


@njit(cache=True, nogil=True)
def _move_group(G, a, r, gs, sg, q, g, delta):
    """a_g += delta, keeping r = c - G a exact on the support groups ``sg[:q]``."""
    for j in range(gs):
        dj = delta[j]
        if dj != 0.0:
            k = g * gs + j
            a[k] += dj
            row = G[k]
            for t in range(q):
                h = sg[t] * gs
                axpy(r[h:h + gs], -dj, row[h:h + gs], gs)


@njit(cache=True, nogil=True)
def _prox_step(G, L, a, r, alpha, gs, positive, sg, q, g, buf):
    """Exact proximal step on group g (step 1 / L_g); r kept exact on ``sg[:q]``.

    Returns the new norm of the group. Decreases the objective by at least
    ``L_g / 2 ||delta||^2`` (the quadratic's curvature on the group is at most L_g)."""
    lg = L[g]
    start = g * gs
    for j in range(gs):
        buf[j] = a[start + j] + r[start + j] / lg
    norm = group_shrink(buf[:gs], alpha / lg, positive)
    for j in range(gs):
        buf[j] -= a[start + j]
    _move_group(G, a, r, gs, sg, q, g, buf)
    return norm


@njit(cache=True, nogil=True, inline="always")
def _support_penalty(a, idx, m, gs, direction, step):
    """Group penalty sum_g ||a_g + step * direction_g|| over the support ``idx[:m]``.

    ``idx`` is ordered by group, so the norms are summed group by group in one pass
    (coordinates of a group that are not in ``idx`` are zero)."""
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
def _newton(G, L, a, r, alpha, gs, positive, sg, gwhere, q, idx, H, grad, d, Hd, gnorm, buf,
            g_tol):
    """Damped Newton steps on the support ``sg[:q]`` until its gradient is below g_tol.

    ``r`` must be exact on the support on entry; it is kept exact there. Groups that leave
    the support are removed from ``sg``. Returns ``(q, steps)``; ``steps < 0`` when the
    restricted Hessian was not positive definite or the steps stalled (the caller then
    sweeps instead).
    """
    steps = 0
    g_prev = np.inf
    g_best = np.inf
    stalled = 0
    for _ in range(_MAX_NEWTON_STEPS):
        # switch off the groups whose optimum is zero by their exact prox test: Newton only
        # creeps towards the kink, where the curvature alpha / ||a_g|| blows up
        for t in range(q):
            g = sg[t]
            lg = L[g]
            sq = 0.0
            for j in range(g * gs, (g + 1) * gs):
                u = a[j] + r[j] / lg
                if positive and u < 0.0:
                    u = 0.0
                sq += u * u
            if sq * lg * lg <= alpha * alpha:
                for j in range(gs):
                    buf[j] = -a[g * gs + j]
                _move_group(G, a, r, gs, sg, q, g, buf)
        # compact the support; free coordinates: each non-zero group whole, except that a
        # non-negative coordinate at zero stays put (the objective has a kink there)
        m = np.int64(0)  # not Literal[int](0): see the docstring of _cholesky
        kept = 0
        g_max = 0.0
        for t in range(q):
            g = sg[t]
            sq = 0.0
            for k in range(g * gs, (g + 1) * gs):
                sq += a[k] * a[k]
            if sq == 0.0:
                gwhere[g] = -1
                continue
            sg[kept] = g
            gwhere[g] = kept
            kept += 1
            norm = np.sqrt(sq)
            gnorm[g] = norm
            gsq = 0.0
            for k in range(g * gs, (g + 1) * gs):
                if a[k] != 0.0 or not positive:
                    idx[m] = k
                    gk = alpha * a[k] / norm - r[k]
                    grad[m] = gk
                    gsq += gk * gk
                    m += 1
                elif r[k] > 0.0:
                    gsq += r[k] * r[k]  # a non-negative coordinate that should move up
            g_max = max(g_max, np.sqrt(gsq))
        q = kept
        if m == 0 or g_max <= g_tol or g_max > 0.5 * g_prev:
            break  # solved, or a full step no longer halves the gradient (rounding level)
        # damped steps that do not halve the gradient: a nearly singular Hessian (more
        # atoms than features), where the ridge-limited Newton crawls -- hand over to sweeps
        if g_max <= 0.5 * g_best:
            g_best = g_max
            stalled = 0
        else:
            stalled += 1
            if stalled == _STALL:
                return q, -1
        if m > H.shape[0]:
            return q, -1
        for s in range(m):
            k = idx[s]
            g = k // gs
            row = G[k]
            Hs = H[s]
            # upper triangle only: the factorisation reads nothing else
            for t in range(s, m):
                Hs[t] = row[idx[t]]
            # Hessian of alpha ||a_g||: alpha / ||a_g|| (I - u u^T), u = a_g / ||a_g||
            w = alpha / gnorm[g]
            for t in range(s, m):
                kt = idx[t]
                if kt // gs != g:
                    break
                Hs[t] -= w * a[k] * a[kt] / (gnorm[g] * gnorm[g])
            Hs[s] += w
        # a relative ridge keeps the factorisation alive when the support is linearly
        # dependent (more atoms than features): the step then runs along the null space
        # until a group reaches its kink and leaves
        ridge = 0.0
        for s in range(m):
            ridge = max(ridge, H[s, s])
        for s in range(m):
            H[s, s] += 1e-9 * ridge
        if not cholesky_in_place(H, m, Hd):  # Hd is free until the step is chosen
            return q, -1
        for s in range(m):
            d[s] = -grad[s]
        forward_solve(H, m, d)
        backward_solve(H, m, d)
        steps += 1
        decrement = 0.0  # grad^T H^{-1} grad: twice the predicted decrease
        for s in range(m):
            decrement -= grad[s] * d[s]
        # longest step before a non-negative coordinate reaches zero
        t_max = 1.0
        block = -1
        if positive:
            for s in range(m):
                k = idx[s]
                if a[k] * d[s] < 0.0:
                    ts = -a[k] / d[s]
                    if ts < t_max:
                        t_max = ts
                        block = s
        penalty0 = 0.0
        for t in range(q):
            penalty0 += gnorm[sg[t]]
        slope = 0.0  # directional derivative of the quadratic part
        curvature = 0.0
        for s in range(m):
            k = idx[s]
            row = G[k]
            v = 0.0
            for t in range(m):
                v += row[idx[t]] * d[t]
            Hd[s] = v
            slope -= r[k] * d[s]
            curvature += d[s] * v
        step = t_max
        # A predicted decrease below the rounding error of the penalty (~1e-16 of it)
        # cannot be measured: the Armijo test would accept or refuse at random. Newton's
        # full step is then taken (quadratic convergence this close to the solution).
        accepted = 0.5 * decrement <= 1e-13 * alpha * penalty0
        for _ls in range(0 if accepted else 40):
            penalty = _support_penalty(a, idx, m, gs, d, step)
            change = step * slope + 0.5 * step * step * curvature + alpha * (penalty - penalty0)
            if change <= -1e-4 * step * decrement:
                accepted = True
                break
            step *= 0.5
        if not accepted:
            return q, -1
        for s in range(m):
            k = idx[s]
            a[k] += step * d[s]
            r[k] -= step * Hd[s]
        # r of the fixed (zero, non-negative) coordinates of support groups changes too
        if positive:
            for t in range(q):
                g = sg[t]
                for k in range(g * gs, (g + 1) * gs):
                    if a[k] == 0.0:
                        row = G[k]
                        v = 0.0
                        for s in range(m):
                            v += row[idx[s]] * d[s]
                        r[k] -= step * v
        if step == t_max and block >= 0:
            a[idx[block]] = 0.0  # lands on the kink: leaves the support exactly
            g_prev = np.inf
        elif step == 1.0:
            g_prev = g_max
        else:
            g_prev = np.inf
    return q, steps


@njit(cache=True, nogil=True)
def _fill_group_rows(G, grows, g, gs):
    """The rows of G of group g's atoms, computed if absent (the group enters the support)."""
    for k in range(g * gs, (g + 1) * gs):
        fill_gram_row(G, grows, k)


@njit(cache=True, nogil=True)
def _gs_add(G, Gs, sg, q, gs):
    """Rows and columns of ``Gs`` (G on the support's coordinates, in the order of
    ``sg``) for the group at position q (``sg[q]`` set)."""
    base = q * gs
    g0 = sg[q] * gs
    for i in range(gs):
        row = G[g0 + i]
        for t in range(q + 1):
            h = sg[t] * gs
            for j in range(gs):
                v = row[h + j]
                Gs[base + i, t * gs + j] = v
                Gs[t * gs + j, base + i] = v


@njit(cache=True, nogil=True)
def _drop_position(t, q, gs, sg, gwhere, Gs):
    """Remove the group at position t of the support from ``sg`` and ``Gs``; returns q."""
    m = q * gs
    lo = t * gs
    gwhere[sg[t]] = -1
    for u in range(t, q - 1):
        sg[u] = sg[u + 1]
        gwhere[sg[u]] = u
    for i in range(lo, m - gs):
        copy_row(Gs[i], Gs[i + gs], m)
    for i in range(m - gs):
        shift_left(Gs[i, lo:m], m - gs - lo, gs)
    return q - 1


@njit(cache=True, nogil=True)
def _newton_direction(Gs, H, a, gnorm, alpha, gs, sg, q, ridge, grad, d, scratch):
    """d = -H^{-1} grad for the Hessian of the support's objective at the current codes,
    ``H = G_SS + alpha / ||a_g|| (I - u u^T)`` per group (u = a_g / ||a_g||) plus the
    ridge; factorised in ``H``. Returns False if H is not positive definite."""
    m = q * gs
    for s in range(m):
        copy_row(H[s, s:m], Gs[s, s:m], m - s)  # the upper triangle: all the factorisation reads
        H[s, s] += ridge
    for t in range(q):
        g = sg[t]
        w = alpha / gnorm[g]
        inv_sq = 1.0 / (gnorm[g] * gnorm[g])
        for i in range(gs):
            ai = a[g * gs + i]
            H[t * gs + i, t * gs + i] += w
            for j in range(i, gs):
                H[t * gs + i, t * gs + j] -= w * ai * a[g * gs + j] * inv_sq
    if not cholesky_in_place(H, m, scratch):
        return False
    for s in range(m):
        d[s] = -grad[s]
    forward_solve(H, m, d)
    backward_solve(H, m, d)
    return True


@njit(cache=True, nogil=True)
def _clipped_step(Gs, a, r, alpha, gs, sg, q, d, delta, Gdelta, penalty0, decrement):
    """Apply the Newton step ``d`` with the groups it carries past the origin set to zero,
    if there are such groups and this decreases the objective by ``1e-4 decrement``
    (Armijo). Returns whether the step was taken (then ``a`` and ``r`` are updated)."""
    m = q * gs
    n_cross = 0
    for t in range(q):
        g = sg[t]
        dot = 0.0
        for j in range(gs):
            v = a[g * gs + j]
            dot += v * (v + d[t * gs + j])
        cross = dot <= 0.0
        for j in range(gs):
            delta[t * gs + j] = -a[g * gs + j] if cross else d[t * gs + j]
        if cross:
            n_cross += 1
    if n_cross == 0:
        return False
    _sym_matvec(Gs, m, delta, Gdelta)
    change = 0.0
    penalty = 0.0
    for t in range(q):
        g = sg[t]
        sq = 0.0
        for j in range(gs):
            s = t * gs + j
            change += (0.5 * Gdelta[s] - r[g * gs + j]) * delta[s]
            v = a[g * gs + j] + delta[s]
            sq += v * v
        penalty += np.sqrt(sq)
    change += alpha * (penalty - penalty0)
    if change > -1e-4 * decrement:
        return False
    for t in range(q):
        g = sg[t]
        for j in range(gs):
            s = t * gs + j
            k = g * gs + j
            if delta[s] == -a[k]:
                a[k] = 0.0
            else:
                a[k] += delta[s]
            r[k] -= Gdelta[s]
    return True


@njit(cache=True, nogil=True)
def _sym_matvec(Gs, m, v, out):
    """out = Gs v for the symmetric Gs, as axpys over its rows (vectorised)."""
    for s in range(m):
        out[s] = 0.0
    for t in range(m):
        if v[t] != 0.0:
            axpy(out, v[t], Gs[t], m)


@njit(cache=True, nogil=True)
def _newton_gram(G, L, a, r, alpha, gs, sg, gwhere, q, Gs, H, grad, d, Hd, delta, gnorm, buf,
                 g_tol, ridge):
    """``_newton`` for codes of any sign, on the support's Gram block ``Gs`` kept up to date
    by the caller (contiguous, where ``_newton`` gathers from G); zero groups leave both.
    Groups carried past the origin by a step are zeroed (``_clipped_step``). Returns
    (q, steps), steps < 0 as in ``_newton``."""
    steps = 0
    g_prev = np.inf
    g_best = np.inf
    stalled = 0
    for _ in range(_MAX_NEWTON_STEPS):
        # switch off the groups whose optimum is zero by their exact prox test (Newton
        # only creeps towards the kink), and drop the zero groups from the support
        for t in range(q - 1, -1, -1):
            g = sg[t]
            lg = L[g]
            sq = 0.0
            asq = 0.0
            for j in range(g * gs, (g + 1) * gs):
                u = a[j] + r[j] / lg
                sq += u * u
                asq += a[j] * a[j]
            if asq != 0.0 and sq * lg * lg <= alpha * alpha:
                for j in range(gs):
                    buf[j] = -a[g * gs + j]
                _move_group(G, a, r, gs, sg, q, g, buf)
                asq = 0.0
            if asq == 0.0:
                q = _drop_position(t, q, gs, sg, gwhere, Gs)
        m = q * gs
        g_max = 0.0
        penalty0 = 0.0
        for t in range(q):
            g = sg[t]
            sq = 0.0
            for k in range(g * gs, (g + 1) * gs):
                sq += a[k] * a[k]
            norm = np.sqrt(sq)
            gnorm[g] = norm
            penalty0 += norm
            gsq = 0.0
            for j in range(gs):
                k = g * gs + j
                gk = alpha * a[k] / norm - r[k]
                grad[t * gs + j] = gk
                gsq += gk * gk
            g_max = max(g_max, np.sqrt(gsq))
        if m == 0 or g_max <= g_tol or g_max > 0.5 * g_prev:
            break  # solved, or a full step no longer halves the gradient (rounding level)
        # steps that do not halve the gradient: a nearly singular Hessian (more atoms than
        # features) where the ridge-limited Newton crawls -- hand over to sweeps
        if g_max <= 0.5 * g_best:
            g_best = g_max
            stalled = 0
        else:
            stalled += 1
            if stalled == _STALL:
                return q, -1
        if not _newton_direction(Gs, H, a, gnorm, alpha, gs, sg, q, ridge, grad, d, Hd):
            return q, -1
        decrement = 0.0  # grad^T H^{-1} grad: twice the predicted decrease
        for s in range(m):
            decrement -= grad[s] * d[s]
        steps += 1
        if _clipped_step(Gs, a, r, alpha, gs, sg, q, d, delta, Hd, penalty0, decrement):
            g_prev = np.inf
            continue
        _sym_matvec(Gs, m, d, Hd)
        slope = 0.0  # directional derivative of the quadratic part
        curvature = 0.0
        for t in range(q):
            g = sg[t]
            for j in range(gs):
                s = t * gs + j
                slope -= r[g * gs + j] * d[s]
                curvature += d[s] * Hd[s]
        step = 1.0
        # A predicted decrease below the rounding error of the penalty (~1e-16 of it)
        # cannot be measured: the Armijo test would accept or refuse at random. Newton's
        # full step is then taken (quadratic convergence this close to the solution).
        accepted = 0.5 * decrement <= 1e-13 * alpha * penalty0
        for _ls in range(0 if accepted else 40):
            penalty = 0.0
            for t in range(q):
                g = sg[t]
                sq = 0.0
                for j in range(gs):
                    v = a[g * gs + j] + step * d[t * gs + j]
                    sq += v * v
                penalty += np.sqrt(sq)
            change = step * slope + 0.5 * step * step * curvature + alpha * (penalty - penalty0)
            if change <= -1e-4 * step * decrement:
                accepted = True
                break
            step *= 0.5
        if not accepted:
            return q, -1
        for t in range(q):
            g = sg[t]
            for j in range(gs):
                s = t * gs + j
                a[g * gs + j] += step * d[s]
                r[g * gs + j] -= step * Hd[s]
        g_prev = g_max if step == 1.0 else np.inf
    return q, steps


# inlined into its one caller (_encode): compiled on its own, Numba would optimise the
# whole kernel twice, here and again in the caller
@njit(cache=True, nogil=True, inline="always")
def group_row(G, grows, gdiag, L, c, xsq, a, r, alpha, gs, positive, max_iter, tol, cap, ridge,
              sg, gwhere, idx, H, Gs, grad, d, Hd, delta, gnorm, buf, viol, cand):
    """Solve one group-lasso row in place in ``a`` (warm start on entry); ``r`` is scratch.

    ``G`` and ``grows`` give the rows of G (see ``_gram``; a group's rows are read once it
    enters the support) and ``gdiag`` its diagonal; ``L`` holds the largest eigenvalue of
    each diagonal block of G (0: a dead group);
    ``cap`` bounds the number of coordinates in the support; ``ridge`` (a tiny multiple of
    the largest ``G_jj``) keeps the Newton systems of dependent supports solvable.
    Returns (outer iterations, duality gap, primal value)."""
    K = a.shape[0]
    n_groups = K // gs
    q = np.int64(0)  # not Literal[int](0): see the docstring of _cholesky
    for g in range(n_groups):
        gwhere[g] = -1
        nonzero = False
        for j in range(g * gs, (g + 1) * gs):
            if L[g] <= 0.0 or gdiag[j] <= 0.0 or (positive and a[j] < 0.0):
                a[j] = 0.0  # a zero atom's only optimal code is 0; prox steps only shrink it
            elif a[j] != 0.0:
                nonzero = True
        if nonzero:
            if (q + 1) * gs > cap:
                for j in range(g * gs, (g + 1) * gs):
                    a[j] = 0.0
                continue
            sg[q] = g
            gwhere[g] = q
            _fill_group_rows(G, grows, g, gs)
            if not positive:
                _gs_add(G, Gs, sg, q, gs)
            q += 1
    _refresh(G, grows, c, a, r, gs, sg, q)
    g_tol = 0.1 * tol * alpha
    it = 0
    gap = np.inf
    primal = 0.0
    while True:
        gap, primal, n_viol = _gap_and_violators(c, xsq, a, r, alpha, gs, positive, gwhere, L,
                                                 viol, cand)
        if gap <= tol * primal or it == max_iter:
            break
        it += 1
        n_add = min(n_viol, max(int(_GROWTH * q), _MIN_GROWTH), cap // gs - q)
        select_largest(viol, cand, n_viol, n_add)
        # While groups still violate optimality, the support is about to change: solve it
        # only as precisely as the worst violation (inexact inner solves, as working-set
        # methods do); the final support is solved to g_tol.
        inner_tol = g_tol
        if n_add > 0:
            inner_tol = max(g_tol, _INEXACT * (np.sqrt(viol[0]) - alpha))
        for t in range(n_add):
            g = cand[t]
            sg[q + t] = g
            gwhere[g] = q + t
            _fill_group_rows(G, grows, g, gs)
            if not positive:
                _gs_add(G, Gs, sg, q + t, gs)
        q += n_add
        moved = False
        # entering groups: one exact prox step each, the worst violator first
        for t in range(q - n_add, q):
            if _prox_step(G, L, a, r, alpha, gs, positive, sg, q, sg[t], buf) > 0.0:
                moved = True
        if positive:
            # support groups with a coordinate at zero that should move up: a prox step
            for t in range(q - n_add):
                g = sg[t]
                for k in range(g * gs, (g + 1) * gs):
                    if a[k] == 0.0 and r[k] > 0.0 and G[k, k] > 0.0:
                        _prox_step(G, L, a, r, alpha, gs, positive, sg, q, g, buf)
                        moved = True
                        break
        if positive:
            q, steps = _newton(G, L, a, r, alpha, gs, positive, sg, gwhere, q, idx, H, grad, d,
                               Hd, gnorm, buf, inner_tol)
        else:
            q, steps = _newton_gram(G, L, a, r, alpha, gs, sg, gwhere, q, Gs, H, grad, d, Hd,
                                    delta, gnorm, buf, inner_tol, ridge)
        if steps < 0:
            # singular restricted Hessian: proximal sweeps on the support instead
            for _s in range(_MAX_FALLBACK_SWEEPS):
                progress = 0.0
                for t in range(q):
                    g = sg[t]
                    if L[g] > 0.0:
                        _prox_step(G, L, a, r, alpha, gs, positive, sg, q, g, buf)
                        for j in range(gs):
                            progress += buf[j] * buf[j] * L[g]
                moved = True
                if progress <= 0.1 * tol * primal:
                    break
        elif steps > 0:
            moved = True
        _refresh(G, grows, c, a, r, gs, sg, q)
        if not moved:
            # no violator and the support solved to g_tol, yet the gap is too wide: ask
            # for a more precise support, until that is below rounding
            g_tol *= 0.01
            if g_tol < 1e-15 * alpha:
                break
    if gap <= tol * primal:
        # polish: exact zeros where the optimum is zero; kept only if still certified
        for t in range(q):  # the support's codes, in case the polish must be undone
            for j in range(gs):
                Hd[t * gs + j] = a[sg[t] * gs + j]
        if _drop_useless_groups(G, a, r, alpha, gs, sg, q, buf):
            _refresh(G, grows, c, a, r, gs, sg, q)
            gap2, primal2, _ = _gap_and_violators(c, xsq, a, r, alpha, gs, positive, gwhere, L,
                                                  viol, cand)
            if gap2 <= tol * primal2:
                gap, primal = gap2, primal2
            else:
                for t in range(q):
                    for j in range(gs):
                        a[sg[t] * gs + j] = Hd[t * gs + j]
    return it, gap, primal


@njit(cache=True, nogil=True)
def _drop_useless_groups(G, a, r, alpha, gs, sg, q, buf):
    """Zero every support group whose removal does not raise the objective.

    Removing group g changes the objective by ``a_g.r_g + 1/2 a_g^T G_gg a_g - alpha ||a_g||``
    (positive at any optimum where the group is non-zero). Near a solution whose optimum
    is exactly zero (alpha at alpha_max) the objective is so flat there that the duality gap
    is met with small non-zero codes; this last descent step returns the exact zeros.
    Returns whether a group was zeroed (r is then exact only on the support)."""
    changed = False
    for t in range(q):
        g = sg[t]
        start = g * gs
        asq = 0.0
        a_r = 0.0
        quad = 0.0
        for j in range(start, start + gs):
            aj = a[j]
            if aj != 0.0:
                asq += aj * aj
                a_r += aj * r[j]
                for k in range(start, start + gs):
                    quad += aj * G[j, k] * a[k]
        if asq > 0.0 and a_r + 0.5 * quad - alpha * np.sqrt(asq) < 0.0:
            for j in range(gs):
                buf[j] = -a[start + j]
            _move_group(G, a, r, gs, sg, q, g, buf)
            changed = True
    return changed
