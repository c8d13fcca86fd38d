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
the input dtype, so float32 data still reaches tight gaps; the driver hands the kernels
float64 blocks of rows (cast block by block), so each kernel is compiled once. Samples are
independent: with several threads the driver calls the (serial, GIL-free) kernels on
disjoint ranges of rows from a pool of Python threads. ``parallel=True`` with a ``prange``
did the same but compiled each kernel a second time as a parallel region (about 15 s of
the cold compile, measured in ``benchmarks/RESULTS.md`` section 11).
"""

import itertools
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple, Optional

import numba
import numpy as np
import scipy.sparse as sp
from numba import njit

from .._sparse import row_sqnorms
from .._threads import _PARALLEL_LAUNCH, serial_blas
from ._gram import gram_diagonal
from ._group import group_row
from ._lasso import lasso_row

# The driver calls the kernels on blocks of rows sized to take about this long, and for at
# most this many outer iterations per row and call: Ctrl-C is seen between calls.
_SLICE_SECONDS = 0.25
_SLICE_ITERATIONS = 64
# sparse atoms (see _products and _gram): densities below which the sparse path is taken
_SPARSE_PRODUCT_C = 0.12
_SPARSE_PRODUCT_G = 0.08
_SPARSE_GRAM_REFRESH = 0.15
# multiply-adds of D D^T above which BLAS's own threads compute it (see _dense_gram)
_THREADED_GRAM_WORK = 2e9
# atoms whose rows of G estimate its density (see _sparse_gram_rows)
_GRAM_DENSITY_SAMPLE = 64
_EMPTY_INT = np.zeros(0, dtype=np.int64)
_EMPTY_FLOAT = np.zeros(0, dtype=np.float64)


@njit(cache=True, nogil=True)
def _leading_dimension(n):
    """Row length (in float64) of the kernels' square factor buffers holding ``n`` columns:
    an odd number of 64-byte cache lines. Rows of a power-of-two length (256 columns:
    2 KiB) all start in the same few sets of the L1 cache, so the leading block the
    solvers work in (a few rows of ~30 entries) evicts itself; with an odd number of
    lines per row consecutive rows fall in different sets."""
    lines = (n + 7) // 8
    return 8 * (lines + 1 - lines % 2)


def _group_kernel(positive):
    """The group kernel for one sign of the codes (``positive``: non-negative codes).

    ``positive`` is a constant of the compiled kernel, not an argument: Numba prunes the
    branch of the other sign before typing, so a kernel compiles only its own Newton
    routine (``_newton`` or ``_newton_gram`` and the helpers below it) -- about a quarter
    of a cold compile of the group path (``benchmarks/RESULTS.md`` section 11). Each
    kernel has its own name, hence its own files in Numba's cache.
    """

    def kernel(G, grows, C, x_sqnorm, codes, L, alpha, group_size, max_iter, tol, cap,
               start, stop, n_iter, gaps, primals):
        """Solve the code problem for rows ``start:stop`` of ``C = X D^T`` (in place in
        ``codes``).

        Parameters
        ----------
        G, grows : ``D D^T``, (K, K) float64, or a buffer its rows are computed into on
            first use, and where the rows come from (see ``_gram``).
        C : (n, K) float64 array, ``X D^T``.
        x_sqnorm : (n,) float64, ``||x_i||^2``.
        codes : (n, K) float64 array, warm start on entry, solution on exit.
        L : (K // group_size,) float64, largest eigenvalue of each diagonal block of G.
        alpha, tol : float; stop a row when ``gap <= tol * primal``.
        start, stop : int, the rows solved by this call (threads call it on disjoint
            ranges).
        n_iter, gaps, primals : (n,) outputs: outer iterations, final gap and primal per
            row.
        """
        K = C.shape[1]
        n_groups = K // group_size
        gdiag = np.empty(K, dtype=np.float64)
        gram_diagonal(G, grows, gdiag)
        ridge = 0.0
        for j in range(K):
            ridge = max(ridge, 1e-9 * gdiag[j])
        a = np.empty(K, dtype=np.float64)
        r = np.empty(K, dtype=np.float64)
        c = np.empty(K, dtype=np.float64)
        sg = np.empty(n_groups, dtype=np.int64)
        gwhere = np.empty(n_groups, dtype=np.int64)
        idx = np.empty(cap, dtype=np.int64)
        H = np.empty((cap, _leading_dimension(cap)), dtype=np.float64)
        Gs = np.empty((0, 0) if positive else (cap, _leading_dimension(cap)), dtype=np.float64)
        grad = np.empty(cap, dtype=np.float64)
        d = np.empty(cap, dtype=np.float64)
        Hd = np.empty(cap, dtype=np.float64)
        delta = np.empty(cap, dtype=np.float64)
        gnorm = np.empty(n_groups, dtype=np.float64)
        buf = np.empty(group_size, dtype=np.float64)
        viol = np.empty(n_groups, dtype=np.float64)
        cand = np.empty(n_groups, dtype=np.int64)
        for i in range(start, stop):
            for j in range(K):
                a[j] = codes[i, j]
                c[j] = C[i, j]
            it, gap, primal = group_row(G, grows, gdiag, L, c, x_sqnorm[i], a, r, alpha,
                                        group_size, positive, max_iter, tol, cap, ridge, sg,
                                        gwhere, idx, H, Gs, grad, d, Hd, delta, gnorm, buf,
                                        viol, cand)
            for j in range(K):
                codes[i, j] = a[j]
            n_iter[i] = it
            gaps[i] = gap
            primals[i] = primal

    kernel.__name__ = kernel.__qualname__ = "encode_bcd_" + ("nonneg" if positive else "signed")
    return njit(cache=True, nogil=True)(kernel)


encode_bcd_signed = _group_kernel(False)
encode_bcd_nonneg = _group_kernel(True)


@njit(cache=True, nogil=True)
def encode_lasso(G, grows, C, x_sqnorm, codes, alpha, positive, max_iter, tol, cap, start, stop,
                 n_iter, gaps, primals):
    """The group kernels (``_group_kernel``) for ``group_size == 1`` (see ``_lasso.py``); ``cap``
    bounds the support."""
    K = C.shape[1]
    gdiag = np.empty(K, dtype=np.float64)
    gram_diagonal(G, grows, gdiag)
    a = np.empty(K, dtype=np.float64)
    r = np.empty(K, dtype=np.float64)
    c = np.empty(K, dtype=np.float64)
    S = np.empty(cap + 1, dtype=np.int64)
    where = np.empty(K, dtype=np.int64)
    theta = np.empty(cap + 1, dtype=np.float64)
    x = np.empty(cap + 1, dtype=np.float64)
    rs = np.empty(cap + 1, dtype=np.float64)
    U = np.empty((cap + 1, _leading_dimension(cap + 1)), dtype=np.float64)
    Gs = np.empty((cap + 1, _leading_dimension(cap + 1)), dtype=np.float64)
    col = np.empty(cap + 1, dtype=np.float64)
    g = np.empty(cap + 1, dtype=np.float64)
    d = np.empty(cap + 1, dtype=np.float64)
    delta = np.empty(cap + 1, dtype=np.float64)
    Hd = np.empty(cap + 1, dtype=np.float64)
    viol = np.empty(K, dtype=np.float64)
    cand = np.empty(K, dtype=np.int64)
    for i in range(start, stop):
        for j in range(K):
            a[j] = codes[i, j]
            c[j] = C[i, j]
        it, gap, primal = lasso_row(G, grows, gdiag, c, x_sqnorm[i], a, r, alpha, positive,
                                    max_iter, tol, cap, S, where, theta, x, rs, U, Gs, col, g,
                                    d, delta, Hd, viol, cand)
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
        return _dead_blocks_to_zero(np.diag(gram).copy())
    n_groups = K // group_size
    idx = np.arange(n_groups)
    blocks = gram.reshape(n_groups, group_size, n_groups, group_size)[idx, :, idx, :]
    return _dead_blocks_to_zero(np.ascontiguousarray(np.linalg.eigvalsh(blocks)[:, -1]))


def atoms_group_lipschitz(dictionary, group_size):
    """``group_lipschitz`` from the atoms, for solves that never form G: the diagonal blocks
    ``D_g D_g^T`` of G computed group by group."""
    D = np.asarray(dictionary, dtype=np.float64)
    Dg = D.reshape(D.shape[0] // group_size, group_size, D.shape[1])
    blocks = Dg @ Dg.transpose(0, 2, 1)
    return _dead_blocks_to_zero(np.ascontiguousarray(np.linalg.eigvalsh(blocks)[:, -1]))


def _dead_blocks_to_zero(L):
    scale = L.max() if L.size else 0.0
    # eigvalsh of an all-zero block can come back as -1e-17: treat such blocks as dead
    L[L <= 1e-12 * max(scale, np.finfo(np.float64).tiny)] = 0.0
    return L


def solve_codes(X, dictionary, alpha, group_size=1, positive=False, init=None,
                max_iter=1000, tol=1e-6, gram=None, correlations=None, sqnorms=None, *,
                callback=None, slice_seconds=_SLICE_SECONDS):
    """Python driver of the code kernels: BLAS products, then bounded kernel calls.

    Threads are whatever the caller set (see ``_threads.thread_limits``). Returns
    ``codes`` (dtype of X) and per-row ``n_iter``, ``gaps`` and ``primals``. The kernels
    only need ``X D^T`` and the row norms ``||x_i||^2``: a caller holding a sparse ``X``
    passes both (``correlations``, ``sqnorms``), and ``X`` itself is then not read
    (except for ``alpha == 0``, solved by dense least squares).

    The rows are solved by a sequence of kernel calls of about ``slice_seconds`` each (a
    block of rows, at most ``_SLICE_ITERATIONS`` outer iterations per row and call; rows
    not done continue from their codes in a later call). Between calls Python runs, so
    Ctrl-C (``KeyboardInterrupt``) is seen within about a slice, whatever ``max_iter``;
    nothing is written to the caller's arrays before the end. ``callback(n_done, n)``, if
    given, is called after every kernel call with the number of rows finished -- for
    progress bars and time-left estimates.
    """
    dtype = X.dtype
    n = X.shape[0]
    K = dictionary.shape[0]
    n_threads = numba.get_num_threads()
    if init is None:
        codes = np.zeros((n, K), dtype=dtype)
    else:
        codes = np.array(init, dtype=dtype, order="C", copy=True)
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
    if n == 0:
        return codes, n_iter, gaps, primals
    # Dead atoms (zero rows: units a connectivity penalty switched off) have zero codes at
    # every optimum and no effect on the others: solve on the live groups only.
    atom_live = np.any(dictionary != 0, axis=1)
    live = np.repeat(atom_live.reshape(-1, group_size).any(axis=1), group_size)
    if not live.all():
        if init is not None:
            codes[:, ~live] = 0
        sub = dict(gram=None if gram is None else np.asarray(gram)[np.ix_(live, live)],
                   correlations=None if correlations is None else correlations[:, live],
                   sqnorms=sqnorms if sqnorms is not None else row_sqnorms(X))
        codes_live, n_iter, gaps, primals = solve_codes(
            X, dictionary[live], alpha, group_size, positive,
            None if init is None else codes[:, live], max_iter, tol, callback=callback,
            slice_seconds=slice_seconds, **sub)
        codes[:, live] = codes_live
        codes[:, ~live] = 0
        return codes, n_iter, gaps, primals
    rows, C = _products(X, dictionary, gram, correlations, n_threads)
    # kept in the data's dtype: the driver casts each block of rows to float64
    C = np.ascontiguousarray(C, dtype=dtype)
    x_sqnorm = (row_sqnorms(X) if sqnorms is None
                else np.ascontiguousarray(sqnorms, dtype=np.float64))
    # sparse rows of G for the residual refreshes, where local atoms make them pay
    gcsr = (_EMPTY_INT, _EMPTY_INT, _EMPTY_FLOAT)
    if rows.G is not None and np.count_nonzero(rows.G) <= _SPARSE_GRAM_REFRESH * rows.G.size:
        Gs = sp.csr_matrix(rows.G)
        gcsr = (Gs.indptr.astype(np.int64), Gs.indices.astype(np.int64), Gs.data)
    gram_buffers = _gram_buffers(rows, K)

    def gram():
        G, have = gram_buffers()
        return G, (have,) + gcsr + rows.lazy

    # supports beyond the rank of G (<= n_features) are degenerate: the factor buffers of
    # the kernels are sized for n_features atoms plus a margin
    cap = int(min(K, dictionary.shape[1] + 64))
    if group_size == 1:
        def kernel(Cb, xb, codes_b, iters, start, stop, it_b, gap_b, primal_b):
            G, grows = gram()
            encode_lasso(G, grows, Cb, xb, codes_b, float(alpha), bool(positive), iters,
                         float(tol), cap, start, stop, it_b, gap_b, primal_b)
    else:
        L = (group_lipschitz(rows.G, group_size) if rows.G is not None
             else atoms_group_lipschitz(dictionary, group_size))
        cap_g = max(cap - cap % group_size, group_size)
        encode_group = encode_bcd_nonneg if positive else encode_bcd_signed

        def kernel(Cb, xb, codes_b, iters, start, stop, it_b, gap_b, primal_b):
            G, grows = gram()
            encode_group(G, grows, Cb, xb, codes_b, L, float(alpha), int(group_size), iters,
                         float(tol), cap_g, start, stop, it_b, gap_b, primal_b)
    _sliced_calls(kernel, C, x_sqnorm, codes, n_iter, gaps, primals, int(max_iter), float(tol),
                  slice_seconds, callback)
    return codes, n_iter, gaps, primals


class GramRows(NamedTuple):
    """Where the kernels read ``G = D D^T``: the dense matrix ``G``, or (``G`` None) rows
    computed on first use from the sparse atoms in ``lazy`` (see ``_gram``)."""

    G: Optional[np.ndarray]
    lazy: tuple


_NO_LAZY = (_EMPTY_INT, _EMPTY_INT, _EMPTY_FLOAT, _EMPTY_INT, _EMPTY_INT, _EMPTY_FLOAT)


def _products(X, dictionary, gram, correlations, n_threads):
    """The rows of ``G = D D^T`` (float64, a ``GramRows``) and ``C = X D^T``.

    These two products are the unavoidable cost; everything after is O(K * support) per
    row. G is float64 whatever the data dtype: a float32-rounded Gram matrix of an
    over-complete dictionary can have negative eigenvalues, along which the Gram-form
    objective is unbounded below. Sparse products pay below a density: measured crossovers
    on one thread (Fashion-MNIST, local atoms, K = 1024-4096) were ~13% for ``X D^T``, which
    the threads lower (scipy's sparse product runs on one thread), and ~8% for ``D D^T``.
    Below the latter, G is not formed: each kernel thread computes the rows of the atoms
    that enter a support (30% of them for 4,096 local atoms on 2,000 images), unless G is so
    sparse that its CSR rows pay in the residual refreshes (then scipy forms it, see
    ``_SPARSE_GRAM_REFRESH``). Dense products on several threads are shared out in row
    blocks to the solver's threads (see ``serial_blas``).
    """
    density = np.count_nonzero(dictionary) / max(dictionary.size, 1)
    sparse_c = correlations is None and density <= _SPARSE_PRODUCT_C / n_threads
    # lazy rows are computed by the kernel threads themselves: no division by the threads
    sparse_g = gram is None and density <= _SPARSE_PRODUCT_G
    D_sparse = sp.csr_matrix(dictionary, dtype=np.float64) if sparse_c or sparse_g else None
    if gram is not None:
        rows = GramRows(np.ascontiguousarray(gram, dtype=np.float64), _NO_LAZY)
    elif sparse_g:
        rows = _sparse_gram_rows(D_sparse)
    else:
        rows = GramRows(_dense_gram(np.asarray(dictionary, dtype=np.float64), n_threads),
                        _NO_LAZY)
    if correlations is not None:
        C = correlations
    elif sparse_c:
        C = np.asarray(X @ D_sparse.T.astype(X.dtype))
    else:
        C = _row_blocks_product(X, dictionary.T, n_threads)
    return rows, C


def _sparse_gram_rows(D_sparse):
    """G for sparse atoms: formed by scipy if the rows of a sample of atoms say it is sparse
    enough for the CSR refreshes, else left to be computed row by row in the kernels."""
    K = D_sparse.shape[0]
    sample = np.unique(np.linspace(0, K - 1, min(K, _GRAM_DENSITY_SAMPLE)).astype(int))
    if (D_sparse[sample] @ D_sparse.T).nnz <= _SPARSE_GRAM_REFRESH * sample.size * K:
        return GramRows((D_sparse @ D_sparse.T).toarray(), _NO_LAZY)
    D_sparse.sort_indices()
    D_csc = D_sparse.tocsc()
    D_csc.sort_indices()
    lazy = tuple(np.ascontiguousarray(a, dtype=t) for a, t in (
        (D_sparse.indptr, np.int64), (D_sparse.indices, np.int64), (D_sparse.data, np.float64),
        (D_csc.indptr, np.int64), (D_csc.indices, np.int64), (D_csc.data, np.float64)))
    return GramRows(None, lazy)


def _gram_buffers(rows, K):
    """A function returning ``(G, have)`` for the calling thread's kernel calls: the dense G
    with every row present, or the thread's own buffer of lazily computed rows (threads
    never write rows another one reads; the rows are the same bits whoever computes them).
    The buffers live as long as this solve."""
    if rows.G is not None:
        have = np.ones(K, dtype=np.uint8)
        return lambda: (rows.G, have)
    local = threading.local()

    def buffers():
        if not hasattr(local, "G"):
            # untouched pages of np.empty take no memory: only the computed rows do
            local.G = np.empty((K, K), dtype=np.float64)
            local.have = np.zeros(K, dtype=np.uint8)
        return local.G, local.have

    return buffers


def _dense_gram(D64, n_threads):
    """``D D^T`` in one BLAS call (numpy takes syrk for ``A @ A.T``): exactly symmetric, and
    the same bits on any number of threads -- in row blocks it is neither, and a fit's
    discrete decisions amplify such differences into a different dictionary. BLAS's own
    threads are woken only for products big enough to outweigh their spinning afterwards
    (see ``serial_blas``)."""
    if n_threads > 1 and D64.shape[0] ** 2 * D64.shape[1] < _THREADED_GRAM_WORK:
        with serial_blas():
            return D64 @ D64.T
    return D64 @ D64.T


def _row_blocks_product(A, B, n_threads):
    """``A @ B`` with the rows of ``A`` in ``n_threads`` blocks, one per thread, each a
    one-thread BLAS call (numpy releases the GIL in BLAS): the kernels that follow get both
    cores (see ``serial_blas``)."""
    if n_threads == 1 or A.shape[0] < 2 * n_threads:
        return A @ B
    out = np.empty((A.shape[0], B.shape[1]), dtype=np.result_type(A, B))
    bounds = np.linspace(0, A.shape[0], n_threads + 1).astype(int)

    def block(k):
        np.matmul(A[bounds[k]:bounds[k + 1]], B, out=out[bounds[k]:bounds[k + 1]])

    with serial_blas(), _PARALLEL_LAUNCH:
        _in_threads(n_threads, n_threads, block)
    return out


def _sliced_calls(kernel, C, x_sqnorm, codes, n_iter, gaps, primals, max_iter, tol,
                  slice_seconds, callback):
    """Run ``kernel`` on blocks of rows sized to take about ``slice_seconds`` each.

    Pass k gives every row still running at most ``_SLICE_ITERATIONS`` more outer
    iterations; a row that used them all without reaching the gap goes on in pass k + 1
    (warm-started from its codes) until ``max_iter`` iterations in total. The block size
    follows the measured time per row (rows cost 20 us to 100 ms depending on the width
    and sparsity), starting from one row per task. The kernels read and write float64:
    blocks of ``C`` and ``codes`` in another dtype are cast on the way in and out (a
    float32 code is rounded once per kernel call, as when the kernel wrote it directly).
    """
    n = C.shape[0]
    # several tasks per thread balance rows that need more iterations than others
    # (the thread count is read here: calling get_num_threads inside a kernel blocks caching)
    n_threads = numba.get_num_threads()
    in_place = codes.dtype == np.float64
    rows = np.arange(n)
    done = 0
    spent = 0  # outer iterations every pending row has had
    per_row = None
    while rows.size:
        iters = min(_SLICE_ITERATIONS, max_iter - spent)
        unfinished = []
        lo = 0
        while lo < rows.size:
            if per_row is None:
                size = 8 * n_threads
            else:
                size = int(np.clip(slice_seconds / per_row, 8 * n_threads, 4 * size))
            block = rows[lo:lo + size]
            lo += block.size
            contiguous = block[-1] - block[0] == block.size - 1
            sl = slice(block[0], block[-1] + 1)
            Cb = np.ascontiguousarray(C[sl] if contiguous else C[block], dtype=np.float64)
            if contiguous and in_place:
                codes_b = codes[sl]
            else:
                codes_b = np.array(codes[sl] if contiguous else codes[block],
                                   dtype=np.float64)
            it_b = np.zeros(block.size, dtype=np.int64)
            gap_b = np.empty(block.size)
            primal_b = np.empty(block.size)
            start = time.perf_counter()
            with _PARALLEL_LAUNCH:
                _run_chunks(n_threads, kernel, block.size, Cb, x_sqnorm[block], codes_b,
                            iters, it_b, gap_b, primal_b)
            per_row = max(time.perf_counter() - start, 1e-6) / block.size
            if not (contiguous and in_place):
                codes[block] = codes_b
            n_iter[block] += it_b
            gaps[block] = gap_b
            primals[block] = primal_b
            # rows that used every iteration of the slice without a certificate go on
            going = (it_b == iters) & ~(gap_b <= tol * primal_b)
            if spent + iters < max_iter and going.any():
                unfinished.append(block[going])
            done += block.size - int(going.sum()) if spent + iters < max_iter else block.size
            if callback is not None:
                callback(done, n)
        spent += iters
        rows = np.concatenate(unfinished) if unfinished else rows[:0]


# helper threads of the code kernels, started once (see _helper_threads)
_HELPERS = {"pool": None, "size": 0}


def _helper_threads(n_helpers):
    """A pool of at least ``n_helpers`` threads, kept for the next calls (starting threads
    on every call cost more than solving a small block). Called under ``_PARALLEL_LAUNCH``,
    so one caller at a time; a forked child starts its own (``_forget_helpers``)."""
    if _HELPERS["pool"] is None or _HELPERS["size"] < n_helpers:
        if _HELPERS["pool"] is not None:
            _HELPERS["pool"].shutdown(wait=False)
        _HELPERS["pool"] = ThreadPoolExecutor(n_helpers, thread_name_prefix="structlearn-codes")
        _HELPERS["size"] = n_helpers
    return _HELPERS["pool"]


def _forget_helpers():
    # in a forked child the pool's threads do not exist: never hand it work
    _HELPERS.update(pool=None, size=0)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helpers)


def _run_chunks(n_threads, kernel, n, Cb, xb, codes_b, iters, it_b, gap_b, primal_b):
    """``kernel`` on rows ``0:n``: in this thread, or as ``8 * n_threads`` contiguous ranges
    of rows (several ranges per thread: rows differ in cost)."""
    if n_threads == 1 or n == 1:
        kernel(Cb, xb, codes_b, iters, 0, n, it_b, gap_b, primal_b)
        return
    n_chunks = min(n, 8 * n_threads)
    _in_threads(n_threads, n_chunks, lambda k: kernel(
        Cb, xb, codes_b, iters, k * n // n_chunks, (k + 1) * n // n_chunks, it_b, gap_b,
        primal_b))


def _in_threads(n_threads, n_tasks, task):
    """``task(k)`` for k in ``0:n_tasks``, taken in turn by this thread and ``n_threads - 1``
    helper threads; ``task`` must release the GIL to gain anything (the kernels do, and
    numpy in BLAS).

    This thread works too: a small task is mostly done before a helper wakes up. On an
    exception (Ctrl-C in this thread) no further task is started; those running finish
    (within a slice, for the kernels). Called under ``_PARALLEL_LAUNCH``."""
    pool = _helper_threads(n_threads - 1)
    tasks = itertools.count()  # next() on it is atomic: each task is taken once
    stop = threading.Event()

    def work():
        for k in tasks:
            if k >= n_tasks or stop.is_set():
                return
            task(k)

    try:
        futures = [pool.submit(work) for _ in range(n_threads - 1)]
        work()
        for future in futures:
            future.result()
    except BaseException:
        stop.set()
        raise


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

