"""Lasso codes (``group_size == 1``): an active-set method on an updated Cholesky factor.

For one sample the problem is ``min_a 1/2 a^T G a - c^T a + alpha ||a||_1`` (``a >= 0``
optionally), with ``G = D D^T`` and ``c = D x``. On a support ``S`` with fixed signs
``theta`` the objective is the quadratic ``1/2 a^T G a - (c - alpha theta)^T a``, whose
minimiser one Newton step reaches exactly. The solver
(feature-sign search [Lee et al., NIPS 2006] with several atoms entering at once):

1. keeps ``r = c - G a`` (minus the gradient of the smooth part) exact on every atom and
   stops when the duality gap (``objective.py``) is below ``tol`` times the objective;
2. adds the atoms violating optimality the most (``|r_j| > alpha``), a quarter of the
   support's size and at least ``_MIN_GROWTH``, each with the sign of its ``r_j``;
3. on the support, takes Newton steps with the Cholesky factor of ``G_SS``, which is
   *updated* -- one triangular solve per entering atom, Givens rotations per leaving one
   -- instead of refactorised at every step (O(m^2) instead of O(m^3)); a step that
   would move a coordinate through zero stops there and the atom leaves (or, if that
   decreases the objective enough, the full step is taken with every crossing coordinate
   set to zero, which drops many atoms for one solve);
4. refreshes ``r`` on every atom from the sparse codes (``O(K |S|)``).

Every step decreases the objective, so warm starts are safe; the duality gap alone
decides when a row is solved. An atom entering with the wrong direction (possible when
several enter together) is removed before any step; if all of them would, the worst
violator takes an exact coordinate step instead, so every outer iteration decreases the
objective and the method cannot cycle.
"""

import numpy as np
from numba import njit

from ._cholesky import (axpy, backward_solve, cholesky_append, cholesky_delete, copy_row,
                        forward_solve, shift_left)
from ._gap import gap_from_sums
from ._gram import fill_gram_row, subtract_gram_row
from ._select import insert_largest

# working-set growth: this fraction of the support enters per outer iteration, at least
# _MIN_GROWTH atoms. Entering atoms that the optimum does not want cost an O(m^2) update
# each to enter and to leave; fewer outer iterations save O(K m) refreshes. Measured on
# Fashion-MNIST dictionaries (K = 256 to 4096, supports of 11%): 0.25 beat 0.125, 0.5
# and 1 (up to 1.6x at K = 4096).
_GROWTH = 0.25
_MIN_GROWTH = 8
# Newton / feature-sign steps per outer iteration, per atom of the support (each step
# adds or removes an atom, or solves the support exactly; the cap only bounds waste)
_STEPS_PER_ATOM = 4
# pivots below this fraction of an atom's squared norm are atoms in the span of the
# support: raised to it (see cholesky_append)
_PIVOT_FLOOR = 1e-9


@njit(cache=True, nogil=True)
def _append(G, j, sign, rj, m, S, where, theta, x, rs, U, Gs, col):
    """Put atom j at position m of the support (x = 0); its row of G must be present."""
    for t in range(m):
        v = G[j, S[t]]
        col[t] = v
        Gs[t, m] = v
        Gs[m, t] = v
    gjj = G[j, j]
    Gs[m, m] = gjj
    cholesky_append(U, m, col, gjj, _PIVOT_FLOOR * gjj)
    S[m] = j
    where[j] = m
    theta[m] = sign
    x[m] = 0.0
    rs[m] = rj


@njit(cache=True, nogil=True)
def _remove(k, m, S, where, theta, x, rs, U, Gs, a):
    """Remove position k of the support (its code becomes 0); returns the new size."""
    cholesky_delete(U, m, k)
    a[S[k]] = 0.0
    where[S[k]] = -1
    for s in range(k, m - 1):
        S[s] = S[s + 1]
        where[S[s]] = s
        theta[s] = theta[s + 1]
        x[s] = x[s + 1]
        rs[s] = rs[s + 1]
    for i in range(k, m - 1):
        copy_row(Gs[i], Gs[i + 1], m)
    for i in range(m - 1):
        shift_left(Gs[i, k:m], m - 1 - k, 1)
    return m - 1


@njit(cache=True, nogil=True)
def _matvec(Gs, m, v, out):
    """out = Gs v for the symmetric Gs, as axpys over its rows (vectorised)."""
    for s in range(m):
        out[s] = 0.0
    for t in range(m):
        vt = v[t]
        if vt != 0.0:
            axpy(out, vt, Gs[t], m)


@njit(cache=True, nogil=True)
def _refresh(G, grows, c, r, S, x, m):
    """r = c - G a on every atom, a being x on the support (rows of G, see ``_gram``)."""
    K = r.shape[0]
    for i in range(K):
        r[i] = c[i]
    for s in range(m):
        v = x[s]
        if v != 0.0:
            subtract_gram_row(G, grows, S[s], v, r)


@njit(cache=True, nogil=True, inline="always")
def _violation(r, j, positive):
    """How much atom j violates optimality: ``|r_j|`` (``max(r_j, 0)`` for non-negative
    codes); above ``alpha`` it does."""
    return max(r[j], 0.0) if positive else abs(r[j])


# reassociation vectorises the sums (the gap is a bound, its rounding order is free)
@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _duality_gap(c, xsq, a, r, alpha, positive):
    """The duality gap and primal value for the lasso (``_gap.gap_from_sums`` with groups
    of one, without its square roots).

    Two vectorised passes over the atoms: the sums (unconditional, a zero code adds exact
    zeros), then the dual norm as ``v if v > m else m`` -- Numba's ``max`` in a reduction
    is not vectorised and made one fused pass 2.5x slower (measured)."""
    a_c = 0.0
    a_r = 0.0
    penalty = 0.0
    for j in range(a.shape[0]):
        aj = a[j]
        a_c += aj * c[j]
        a_r += aj * r[j]
        penalty += abs(aj)
    dual_norm = 0.0
    for j in range(r.shape[0]):
        v = _violation(r, j, positive)
        dual_norm = v if v > dual_norm else dual_norm
    return gap_from_sums(xsq, a_c, a_r, penalty, dual_norm, alpha)


@njit(cache=True, nogil=True)
def _largest_violators(r, alpha, positive, where, gdiag, k, viol, cand):
    """The ``k`` atoms off the support that violate optimality the most (``|r_j| >
    alpha``, ``r_j > alpha`` for non-negative codes), largest first, into ``viol`` (their
    ``|r_j|``) / ``cand``; returns how many (at most ``k``).

    One pass keeping a sorted top ``k`` (k is small: a quarter of the support, at least
    ``_MIN_GROWTH``): once ``k`` are held, the bar rises to the k-th largest and most later
    atoms are turned away by one comparison; no list of every violator is built. (Blocks
    passed over by a vectorised max were tried: most blocks hold a violator while a row is
    far from solved, and the kernel got slower.)"""
    if k <= 0:
        return 0
    n_top = 0
    bar = alpha
    for j in range(r.shape[0]):
        v = _violation(r, j, positive)
        if v > bar and where[j] < 0 and gdiag[j] > 0.0:
            n_top = insert_largest(viol, cand, n_top, k, v, j)
            if n_top == k:
                bar = viol[k - 1]
    return n_top


@njit(cache=True, nogil=True)
def _support_steps(alpha, m, n_new, S, where, theta, x, rs, U, Gs, a, g, d, delta, Hd,
                   g_tol, max_steps):
    """Feature-sign steps on the support until its sign-restricted problem is solved.

    The last ``n_new`` positions are atoms that just entered (``x = 0``); those whose
    Newton direction points against their sign leave before any step. Solved means
    ``max_s |g_s| <= g_tol`` for the gradient ``g = alpha theta - r`` on the support (the
    duality gap grows with it, see ``lasso_row``), or a full step that no longer halves it
    (rounding level). Returns the new support size and the number of steps taken.
    """
    steps = 0
    g_prev = np.inf
    for _ in range(max_steps):
        if m == 0:
            break
        g_max = 0.0
        for s in range(m):
            g[s] = alpha * theta[s] - rs[s]
            d[s] = -g[s]
            g_max = max(g_max, abs(g[s]))
        if n_new == 0 and (g_max <= g_tol or g_max > 0.5 * g_prev):
            break
        forward_solve(U, m, d)
        backward_solve(U, m, d)
        if n_new > 0:
            bad = 0
            for s in range(m - n_new, m):
                if theta[s] * d[s] <= 0.0:
                    bad += 1
            if bad == n_new:
                # every entering atom points the wrong way (on a nearly dependent support
                # rounding can do this even to a single one): the worst violator, first of
                # them, takes an exact coordinate step instead -- a guaranteed decrease of
                # (|r_j| - alpha)^2 / (2 G_jj) -- and the others leave
                first = m - n_new
                for s in range(m - 1, first, -1):
                    m = _remove(s, m, S, where, theta, x, rs, U, Gs, a)
                n_new = 0
                step = (rs[first] - alpha * theta[first]) / Gs[first, first]
                x[first] = step
                for s in range(m):
                    rs[s] -= Gs[first, s] * step
                continue
            if bad > 0:
                for s in range(m - 1, m - n_new - 1, -1):
                    if theta[s] * d[s] <= 0.0:
                        m = _remove(s, m, S, where, theta, x, rs, U, Gs, a)
                n_new -= bad
                continue
        decrement = 0.0  # g^T H^{-1} g: twice the predicted decrease
        for s in range(m):
            decrement -= g[s] * d[s]
        n_new = 0
        steps += 1
        g_prev = np.inf
        t_max = 1.0
        block = np.int64(-1)  # not Literal[int](-1) (see the docstring of _cholesky)
        for s in range(m):
            if x[s] * d[s] < 0.0:
                ts = -x[s] / d[s]
                if ts < t_max:
                    t_max = ts
                    block = s
        if block < 0:  # no sign change: the step solves the quadratic model exactly
            _matvec(Gs, m, d, Hd)
            for s in range(m):
                x[s] += d[s]
                rs[s] -= Hd[s]
            g_prev = g_max
            continue
        # Full step with every crossing coordinate clipped to zero: drops many atoms per
        # solve where capped steps drop one; kept only if it decreases enough.
        change = 0.0
        for s in range(m):
            if x[s] * d[s] < 0.0 and abs(x[s]) <= abs(d[s]):
                delta[s] = -x[s]
            else:
                delta[s] = d[s]
        _matvec(Gs, m, delta, Hd)
        for s in range(m):
            change += (0.5 * Hd[s] - rs[s]) * delta[s]
            change += alpha * (abs(x[s] + delta[s]) - abs(x[s]))
        if change <= -1e-4 * decrement:
            for s in range(m):
                x[s] += delta[s]
                rs[s] -= Hd[s]
            for s in range(m - 1, -1, -1):
                if x[s] == 0.0:
                    m = _remove(s, m, S, where, theta, x, rs, U, Gs, a)
            continue
        _matvec(Gs, m, d, Hd)
        for s in range(m):
            x[s] += t_max * d[s]
            rs[s] -= t_max * Hd[s]
        x[block] = 0.0
        m = _remove(block, m, S, where, theta, x, rs, U, Gs, a)
    for s in range(m - 1, -1, -1):
        if x[s] == 0.0:  # entered but never moved (step cap reached)
            m = _remove(s, m, S, where, theta, x, rs, U, Gs, a)
    return m, steps


# inlined into its one caller (_encode): compiled on its own, Numba would optimise the
# whole kernel twice, here and again in the caller
@njit(cache=True, nogil=True, inline="always")
def lasso_row(G, grows, gdiag, c, xsq, a, r, alpha, positive, max_iter, tol, cap, S, where,
              theta, x, rs, U, Gs, col, g, d, delta, Hd, viol, cand):
    """Solve one lasso row in place in ``a`` (warm start on entry); ``r`` is scratch.

    ``G`` and ``grows`` give the rows of G (see ``_gram``); ``gdiag`` is its diagonal
    (squared atom norms; 0 marks a dead atom).

    Returns (outer iterations, duality gap, primal value)."""
    K = a.shape[0]
    m = np.int64(0)  # not Literal[int](0): see the docstring of _cholesky
    for j in range(K):
        where[j] = -1
    for j in range(K):
        if gdiag[j] <= 0.0 or (positive and a[j] < 0.0):
            a[j] = 0.0  # a zero atom's only optimal code is 0
        elif a[j] != 0.0:
            if m == cap:
                a[j] = 0.0
                continue
            sign = 1.0 if a[j] > 0.0 else -1.0
            fill_gram_row(G, grows, j)
            _append(G, j, sign, 0.0, m, S, where, theta, x, rs, U, Gs, col)
            x[m] = a[j]
            m += 1
    _refresh(G, grows, c, r, S, x, m)
    for s in range(m):
        rs[s] = r[S[s]]
    it = 0
    gap = np.inf
    primal = 0.0
    # At the optimum of a support, gap = sum_s a_s g_s plus a term from rescaling the dual
    # point by max |r_j| = alpha + max |g_s| (g = alpha theta - r on the support): both are
    # about tol * primal when max |g_s| <= tol * alpha (||a||_1 <= primal / alpha)
    g_tol = 0.1 * tol * alpha
    while True:
        gap, primal = _duality_gap(c, xsq, a, r, alpha, positive)
        if gap <= tol * primal or it == max_iter:
            break
        it += 1
        # at most a quarter of the support enters, and at least _MIN_GROWTH atoms; the
        # worst violator first: if every entering atom points the wrong way, it takes a
        # coordinate step (see _support_steps)
        n_add = _largest_violators(r, alpha, positive, where, gdiag,
                                   min(max(int(_GROWTH * m), _MIN_GROWTH), cap - m), viol, cand)
        for t in range(n_add):
            j = cand[t]
            fill_gram_row(G, grows, j)
            _append(G, j, 1.0 if r[j] > 0.0 else -1.0, r[j], m, S, where, theta, x, rs, U, Gs,
                    col)
            m += 1
        m, steps = _support_steps(alpha, m, n_add, S, where, theta, x, rs, U, Gs, a, g, d,
                                  delta, Hd, g_tol, _STEPS_PER_ATOM * (m + 1) + 8)
        if n_add == 0 and steps == 0:
            # no violator and the support solved to g_tol, yet the gap is too wide: ask
            # for a more precise support, until that is below rounding
            g_tol *= 0.01
            if g_tol < 1e-15 * alpha:
                break
        for s in range(m):
            a[S[s]] = x[s]
        _refresh(G, grows, c, r, S, x, m)
        for s in range(m):
            rs[s] = r[S[s]]
    return it, gap, primal
