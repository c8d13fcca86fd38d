"""Peer solvers for the sparse-coding benchmark, all solving the *same* problem.

For every row ``x`` of ``X`` (n_samples x n_features) and a dictionary ``D``
(n_components x n_features, one atom per row), every solver here returns ``a`` solving::

    min_a  1/2 ||x - D^T a||_2^2 + alpha * sum_g ||a_g||_2                     (P)

with contiguous groups ``a_g`` of ``group_size`` entries (``group_size=1``: the lasso).
This is the convention of :func:`sklearn.decomposition.sparse_encode` and of
``sklearn_structlearn.group_sparse_encode``. Each peer's own convention, and the
translation used here, is written next to the peer and was checked numerically
(``python benchmarks/_peers.py`` re-runs that check).

Per row, a peer sees a regression with design ``D^T`` (p x K, p = n_features) and
target ``x``; its objective and the parameter passed to it:

- sklearn_cd, sklearn_lars: 1/(2p) ||x - D^T a||^2 + a' ||a||_1, with a' = alpha / p
  (sparse_encode does this division itself).
- skglm, celer (Lasso / GroupLasso): 1/(2p) ||x - D^T a||^2 + a' sum_g w_g ||a_g||, with
  a' = alpha / p and the default weights w_g = 1.
- group_lasso: documented as 1/(2p) ||x - D^T a||^2 + r sum_g s_g ||a_g||, but its FISTA
  steps the gradient by 0.5/L and thresholds by r/L, so its fixed point solves the problem
  with 2r: we pass r = alpha / (2p), s_g = 1 (scale_reg="none").
- spams_lasso (mode=2), spams_fista (loss="square"): 1/2 ||x - D a||^2 + l1 * penalty,
  with l1 = alpha.
- numpy_fista: (P) directly (batched FISTA with adaptive restart).

The reference solution used to measure suboptimality is :func:`reference_solve`
(the same batched FISTA, run to a relative duality gap of 1e-12 on every row).

Every ``solve_*`` function has the signature ``solve(X, D, alpha, group_size, tol,
n_threads) -> codes`` (n_samples x n_components, float64). Peers that fit one row per
call (skglm, celer, group_lasso), and sklearn_cd, are spread over ``n_threads`` joblib
worker processes when ``n_threads > 1`` -- what ``sparse_encode(n_jobs=...)`` does.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, field
from functools import partial

import numpy as np

# ---------------------------------------------------------------------------------------
# The problem: objective, duality gap, prox
# ---------------------------------------------------------------------------------------

_TINY = np.finfo(np.float64).tiny


def group_norms(A, group_size):
    """Euclidean norm of each contiguous group of columns of ``A`` -> (n, K // g)."""
    if group_size == 1:
        return np.abs(A)
    n, k = A.shape
    Ag = A.reshape(n, k // group_size, group_size)
    return np.sqrt(np.einsum("ijk,ijk->ij", Ag, Ag))


def group_soft_threshold(Z, threshold, group_size):
    """Prox of ``threshold * sum_g ||z_g||`` applied to every row of ``Z``."""
    if group_size == 1:
        return np.sign(Z) * np.maximum(np.abs(Z) - threshold, 0.0)
    n, k = Z.shape
    Zg = Z.reshape(n, k // group_size, group_size)
    norms = np.sqrt(np.einsum("ijk,ijk->ij", Zg, Zg))[..., None]
    shrink = np.maximum(1.0 - threshold / np.maximum(norms, _TINY), 0.0)
    return (Zg * shrink).reshape(n, k)


def primal_objective(X, D, A, alpha, group_size):
    """Objective (P) of every row: 1/2 ||x - D^T a||^2 + alpha sum_g ||a_g||.

    The residual is formed explicitly (not in Gram form) so that the objective is
    accurate to round-off even when it is compared at the 1e-12 level.
    """
    R = X - A @ D
    return 0.5 * np.einsum("ij,ij->i", R, R) + alpha * group_norms(A, group_size).sum(axis=1)


def duality_gap(X, D, A, alpha, group_size):
    """Per-row duality gap of (P) and the primal objective.

    Dual of (P): max_theta <theta, x> - 1/2 ||theta||^2  s.t.  max_g ||(D theta)_g|| <= alpha.
    The dual point is the residual rescaled into the feasible set, so gap >= P - P*.
    """
    R = X - A @ D
    primal = 0.5 * np.einsum("ij,ij->i", R, R) + alpha * group_norms(A, group_size).sum(axis=1)
    dual_norm = group_norms(R @ D.T, group_size).max(axis=1)
    scale = np.minimum(1.0, alpha / np.maximum(dual_norm, _TINY))
    theta = R * scale[:, None]
    dual = np.einsum("ij,ij->i", theta, X) - 0.5 * np.einsum("ij,ij->i", theta, theta)
    return primal - dual, primal


def alpha_max(X, D, group_size):
    """Per row, the smallest alpha for which the solution is zero."""
    return group_norms(X @ D.T, group_size).max(axis=1)


# ---------------------------------------------------------------------------------------
# Batched FISTA with adaptive restart (reference solver and the "numpy_fista" peer)
# ---------------------------------------------------------------------------------------


def fista(X, D, alpha, group_size=1, *, tol=1e-12, max_iter=100_000, check_every=10,
          compact=True, init=None, return_info=False):
    """Batched FISTA with per-row adaptive restart, in Gram form, vectorised over rows.

    Stops a row once its relative duality gap ``gap / P`` is <= ``tol``.

    Parameters
    ----------
    compact : bool
        If True, converged rows are dropped from the batch (the reference solver does
        this to save time). If False, every row is iterated until *all* rows have
        converged: the naive batched solver a NumPy user would write.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    D = np.ascontiguousarray(D, dtype=np.float64)
    n, k = X.shape[0], D.shape[0]
    gram = D @ D.T
    corr = X @ D.T
    lipschitz = float(np.linalg.eigvalsh(gram)[-1])
    step, thr = 1.0 / lipschitz, alpha / lipschitz

    out = np.zeros((n, k)) if init is None else np.array(init, dtype=np.float64)
    gaps = np.full(n, np.inf)
    primals = np.full(n, np.nan)
    rows = np.arange(n)
    A = out.copy()
    Y = A.copy()
    t = np.ones(n)
    C = corr
    it = 0
    for it in range(1, max_iter + 1):
        A_new = group_soft_threshold(Y - step * (Y @ gram - C), thr, group_size)
        diff = A_new - A
        # Gradient-based adaptive restart (O'Donoghue & Candes 2015), row by row.
        restart = np.einsum("ij,ij->i", Y - A_new, diff) > 0
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        beta = (t - 1.0) / t_new
        beta[restart] = 0.0
        t_new[restart] = 1.0
        Y = A_new + beta[:, None] * diff
        A, t = A_new, t_new
        if it % check_every == 0 or it == max_iter:
            gap, primal = duality_gap(X[rows], D, A, alpha, group_size)
            gaps[rows], primals[rows] = gap, primal
            done = gap <= tol * np.maximum(primal, _TINY)
            if done.all():
                out[rows] = A
                break
            if compact and done.any():
                out[rows[done]] = A[done]
                keep = ~done
                rows, A, Y, t, C = rows[keep], A[keep], Y[keep], t[keep], C[keep]
    else:
        out[rows] = A
    if return_info:
        return out, {"n_iter": it, "gap": gaps, "primal": primals,
                     "rel_gap": gaps / np.maximum(primals, _TINY)}
    return out


def reference_solve(X, D, alpha, group_size=1, *, tol=1e-12, max_iter=200_000,
                    batch_size=1000):
    """Tight reference solution of (P), certified by the duality gap.

    Batched FISTA with per-row restarts, converged rows dropped from the batch, run until
    every row has ``gap / P <= tol``. (Tried: an active-set Newton polish after a looser
    FISTA; it saved no time on Fashion-MNIST dictionaries, so it is not used.)

    Returns
    -------
    codes : ndarray (n_samples, n_components)
    rel_gap : ndarray (n_samples,)
        Achieved relative duality gap: a certificate ``(P(a) - P*) / P(a) <= rel_gap``.
    """
    codes, rel_gaps = [], []
    for start in range(0, X.shape[0], batch_size):
        A, info = fista(X[start:start + batch_size], D, alpha, group_size, tol=tol,
                        max_iter=max_iter, compact=True, return_info=True)
        codes.append(A)
        rel_gaps.append(info["rel_gap"])
    return np.vstack(codes), np.concatenate(rel_gaps)


def suboptimality(X, D, A, alpha, group_size, ref_objective):
    """Per-row relative suboptimality (P(a) - P(a_ref)) / P(a_ref)."""
    obj = primal_objective(X, D, A, alpha, group_size)
    return (obj - ref_objective) / np.maximum(ref_objective, _TINY)


# ---------------------------------------------------------------------------------------
# Row-parallel driver for peers that solve one row per call
# ---------------------------------------------------------------------------------------


def _row_parallel(fit_rows, X, n_threads):
    """Run ``fit_rows(X_chunk)`` on ``n_threads`` joblib (loky) workers, one chunk each."""
    if n_threads <= 1 or X.shape[0] < 2:
        return fit_rows(X)
    from joblib import Parallel, delayed

    chunks = np.array_split(np.arange(X.shape[0]), n_threads)
    parts = Parallel(n_jobs=n_threads)(delayed(fit_rows)(X[c]) for c in chunks)
    return np.vstack(parts)


# ---------------------------------------------------------------------------------------
# The peers
# ---------------------------------------------------------------------------------------


def solve_floor(X, D, alpha, group_size, tol, n_threads):
    """Not a solver: the single matrix product X @ D^T every solver has to do."""
    return X @ D.T


def solve_numpy_fista(X, D, alpha, group_size, tol, n_threads):
    """Plain batched FISTA with restarts, vectorised over rows (converged rows dropped)."""
    return fista(X, D, alpha, group_size, tol=tol, max_iter=50_000, compact=True)


def solve_structlearn(X, D, alpha, group_size, tol, n_threads):
    """This package: ``sklearn_structlearn.group_sparse_encode``."""
    from sklearn_structlearn import group_sparse_encode

    # max_iter raised from its default (1000) so that a tight tol is never cut short,
    # as for every other peer here.
    return np.asarray(group_sparse_encode(X, D, alpha=alpha, group_size=group_size, tol=tol,
                                          max_iter=10_000, n_jobs=n_threads), dtype=np.float64)


def _sklearn_cd_rows(X, D, alpha, tol):
    from sklearn.linear_model import Lasso

    n_features = D.shape[1]
    # Exactly what sparse_encode(algorithm="lasso_cd") builds (scikit-learn 1.9),
    # except that its tol (hard-coded to 1e-8 there) is exposed.
    clf = Lasso(alpha=alpha / n_features, fit_intercept=False, precompute=D @ D.T, tol=tol,
                max_iter=100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(np.asfortranarray(D.T), np.asfortranarray(X.T), check_input=False)
    return np.atleast_2d(clf.coef_)


def solve_sklearn_cd(X, D, alpha, group_size, tol, n_threads):
    """scikit-learn coordinate descent (sparse_encode's lasso_cd path, tol exposed)."""
    if group_size != 1:
        raise NotImplementedError
    return _row_parallel(partial(_sklearn_cd_rows, D=D, alpha=alpha, tol=tol), X, n_threads)


def solve_sklearn_lars(X, D, alpha, group_size, tol, n_threads):
    """scikit-learn LARS homotopy: sparse_encode(algorithm="lasso_lars"), exact (no tol)."""
    from sklearn.decomposition import sparse_encode

    if group_size != 1:
        raise NotImplementedError
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sparse_encode(X, D, algorithm="lasso_lars", alpha=alpha, n_jobs=n_threads)


def _per_row_estimator_rows(X, D, alpha, group_size, tol, module):
    """One fit per row with skglm's or celer's Lasso / GroupLasso (same API, same scaling).

    Both minimise 1/(2 n_features) ||x - D^T a||^2 + alpha' * penalty, hence alpha / n_features.
    """
    from importlib import import_module

    peer = import_module(module)
    n_features = D.shape[1]
    design = np.asfortranarray(D.T)
    if group_size == 1:
        est = peer.Lasso(alpha=alpha / n_features, fit_intercept=False, tol=tol, max_iter=1000)
    else:  # int groups = contiguous blocks; weights=None -> all ones
        est = peer.GroupLasso(groups=group_size, alpha=alpha / n_features, fit_intercept=False,
                              tol=tol, max_iter=1000)
    out = np.empty((X.shape[0], D.shape[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(X.shape[0]):
            out[i] = est.fit(design, X[i]).coef_
    return out


def solve_skglm(X, D, alpha, group_size, tol, n_threads):
    """skglm Lasso / GroupLasso, one fit per row."""
    return _row_parallel(partial(_per_row_estimator_rows, D=D, alpha=alpha, group_size=group_size,
                                 tol=tol, module="skglm"), X, n_threads)


def solve_celer(X, D, alpha, group_size, tol, n_threads):
    """celer Lasso / GroupLasso, one fit per row."""
    return _row_parallel(partial(_per_row_estimator_rows, D=D, alpha=alpha, group_size=group_size,
                                 tol=tol, module="celer"), X, n_threads)


def _group_lasso_rows(X, D, alpha, group_size, tol):
    from group_lasso import GroupLasso

    n_features, k = D.shape[1], D.shape[0]
    design = np.ascontiguousarray(D.T)
    # Its objective is 1/(2p)||.||^2 + group_reg * sum_g ||a_g|| on paper, but its FISTA
    # step uses 0.5/L for the gradient and group_reg/L for the prox, whose fixed point is
    # the problem with 2 * group_reg: hence the factor 1/2 (checked in _check_conventions).
    est = GroupLasso(groups=np.repeat(np.arange(k // group_size), group_size),
                     group_reg=alpha / (2.0 * n_features), l1_reg=0.0, scale_reg="none",
                     fit_intercept=False, n_iter=100_000, tol=tol, supress_warning=True)
    # Its fit() runs power iterations for a Lipschitz bound unless given one: compute it
    # once with its own formula (1.5 * sigma_max^2 / n_rows), as a user would.
    lipschitz = 1.5 * np.linalg.norm(design, 2) ** 2 / n_features
    out = np.empty((X.shape[0], k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(X.shape[0]):
            out[i] = est.fit(design, X[i], lipschitz=lipschitz).coef_.ravel()
    return out


def solve_group_lasso(X, D, alpha, group_size, tol, n_threads):
    """group-lasso package (yngvem) GroupLasso, one fit per row."""
    return _row_parallel(
        partial(_group_lasso_rows, D=D, alpha=alpha, group_size=group_size, tol=tol),
        X, n_threads)


def solve_spams_lasso(X, D, alpha, group_size, tol, n_threads):
    """SPAMS LARS (spams.lasso, mode=2), all rows in one call, exact (no tol)."""
    import spams

    if group_size != 1:
        raise NotImplementedError
    codes = spams.lasso(np.asfortranarray(X.T), D=np.asfortranarray(D.T), lambda1=alpha,
                        mode=2, numThreads=n_threads)
    return np.asarray(codes.toarray().T)


def solve_spams_fista(X, D, alpha, group_size, tol, n_threads):
    """SPAMS proximal gradient (spams.fistaFlat), all rows in one call."""
    import spams

    W0 = np.zeros((D.shape[0], X.shape[0]), order="F")
    regul = "l1" if group_size == 1 else "group-lasso-l2"
    # tol is a relative duality gap for these penalties, checked every it0 iterations.
    W = spams.fistaFlat(np.asfortranarray(X.T), np.asfortranarray(D.T), W0, loss="square",
                        regul=regul, lambda1=alpha, size_group=group_size, tol=tol,
                        max_it=100_000, it0=10, numThreads=n_threads, verbose=False)
    return np.asarray(W.T)


# ---------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------


@dataclass
class Peer:
    name: str
    solve: object
    module: str | None  # import name, to detect availability and version
    # Tolerance ladder, loosest first; the benchmark takes the loosest value reaching the
    # target suboptimality on a calibration subsample. Empty: the solver has no tol.
    tols: tuple = ()
    group_sizes: tuple | None = None  # None: any group size
    per_row: bool = False  # one fit per row (Python loop)
    # Seconds per row: by default run on the first Fashion-MNIST setting only, and timed
    # at 1 thread only (see bench_encode.py --slow-everywhere).
    slow: bool = False
    note: str = ""
    version: str | None = field(default=None, init=False)
    error: str | None = field(default=None, init=False)

    @property
    def available(self):
        return self.error is None

    def supports(self, group_size):
        return self.group_sizes is None or group_size in self.group_sizes


# Tolerance ladders, loosest first. Solvers stopping on a relative duality gap get a
# looser start: their gap bound is pessimistic on coherent dictionaries.
_LADDER = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12)
_GAP_LADDER = (1e-1, 1e-2) + _LADDER

PEERS = [
    Peer("structlearn", solve_structlearn, "sklearn_structlearn", tols=_GAP_LADDER,
         note="this package, group_sparse_encode"),
    Peer("sklearn_cd", solve_sklearn_cd, "sklearn", tols=_LADDER, group_sizes=(1,),
         note="Lasso(precompute=Gram) as in sparse_encode lasso_cd; tol exposed"),
    Peer("sklearn_lars", solve_sklearn_lars, "sklearn", group_sizes=(1,),
         note="sparse_encode lasso_lars; exact homotopy"),
    Peer("skglm", solve_skglm, "skglm", tols=_LADDER, per_row=True),
    Peer("celer", solve_celer, "celer", tols=_LADDER, per_row=True),
    # group_lasso: its tol (relative change of the coefficients) gives ~1e-3 and ~1e-5
    # suboptimality at 1e-3 and 1e-4 on these problems, and every step costs seconds per
    # row, so its ladder starts at 1e-5.
    Peer("group_lasso", solve_group_lasso, "group_lasso", tols=_LADDER[2:], per_row=True,
         slow=True,
         note="FISTA with backtracking, pure NumPy"),
    Peer("spams_lasso", solve_spams_lasso, "spams", group_sizes=(1,),
         note="spams.lasso LARS; exact homotopy"),
    Peer("spams_fista", solve_spams_fista, "spams", tols=_GAP_LADDER,
         note="spams.fistaFlat"),
    Peer("numpy_fista", solve_numpy_fista, None, tols=_GAP_LADDER,
         note="batched NumPy FISTA + restart"),
    Peer("floor", solve_floor, None, note="X @ D.T only"),
]

_DIST_NAMES = {"sklearn": "scikit-learn", "group_lasso": "group-lasso", "spams": "spams-bin",
               "sklearn_structlearn": "sklearn-structlearn"}


def discover_peers():
    """Import every peer's package; record its version or why it is unavailable."""
    from importlib import metadata

    for peer in PEERS:
        if peer.module is None:
            peer.version = np.__version__
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mod = importlib.import_module(peer.module)
            if peer.name == "structlearn" and not hasattr(mod, "group_sparse_encode"):
                raise ImportError("sklearn_structlearn has no group_sparse_encode yet")
            try:
                peer.version = metadata.version(_DIST_NAMES.get(peer.module, peer.module))
            except metadata.PackageNotFoundError:
                peer.version = getattr(mod, "__version__", "?")
        except Exception as exc:  # noqa: BLE001 -- any import failure means "skip"
            peer.error = f"{type(exc).__name__}: {exc}"
    return PEERS


def get_peer(name):
    for peer in PEERS:
        if peer.name == name:
            return peer
    raise KeyError(name)


# ---------------------------------------------------------------------------------------
# Self-check of the conventions: python benchmarks/_peers.py
# ---------------------------------------------------------------------------------------


def _check_conventions(n=40, n_features=60, k=32, seed=0):
    """Solve a small random problem with every peer at a tight tol; print suboptimality."""
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((k, n_features))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((n, k)) * (rng.random((n, k)) < 0.15) @ D
    X += 0.1 * rng.standard_normal(X.shape)
    for group_size in (1, 4):
        alpha = 0.2 * np.median(alpha_max(X, D, group_size))
        A_ref, rel_gap = reference_solve(X, D, alpha, group_size)
        ref_obj = primal_objective(X, D, A_ref, alpha, group_size)
        print(f"group_size={group_size} alpha={alpha:.4g} reference max rel gap "
              f"{rel_gap.max():.1e}, nnz {np.mean(A_ref != 0):.3f}")
        for peer in discover_peers():
            if not peer.available or not peer.supports(group_size) or peer.name == "floor":
                continue
            tol = peer.tols[-3] if peer.tols else None
            try:
                A = peer.solve(X, D, alpha, group_size, tol, 1)
            except Exception as exc:  # noqa: BLE001
                print(f"  {peer.name:13s} FAILED {type(exc).__name__}: {exc}")
                continue
            sub = suboptimality(X, D, A, alpha, group_size, ref_obj)
            print(f"  {peer.name:13s} tol={tol}  rel subopt mean {sub.mean():.2e} "
                  f"max {sub.max():.2e}  |A-A_ref|max {np.abs(A - A_ref).max():.1e}")


if __name__ == "__main__":
    _check_conventions()
