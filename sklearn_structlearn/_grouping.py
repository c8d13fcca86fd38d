"""Which units form a pooling group: group-aware seeding and re-grouping of units.

The group penalty ``alpha * sum_g ||a_{i,g}||_2`` of a layer is cheap for units that
are active together and expensive for units that are not, but the solvers never move a
unit from one group to another: a layer keeps the grouping of its initial dictionary.
Two mechanisms, both used by :class:`~sklearn_structlearn.GroupSparseCodingLayer`,
therefore decide the groups:

- :func:`neighbour_groups` seeds every group from one row of the data and its nearest
  rows, so the group starts inside one co-active subspace;
- :func:`regroup_units` permutes units between groups so that units whose codes are
  active together share a group. A permutation of the units (rows of the dictionary,
  columns of the codes) leaves the reconstruction and the connectivity penalty
  unchanged, and only swaps that lower the group penalty of the current codes are
  accepted, so the layer objective can only decrease.
"""

import numpy as np
import scipy.sparse as sp
from numba import njit

# rows searched for the neighbours of a group's seed row: enough to find rows of the same
# co-active subspace, bounded so that seeding costs O(n_groups * _NEIGHBOUR_POOL * p)
_NEIGHBOUR_POOL = 2048
# rows on which candidate swaps are ranked; the chosen swap is then checked on all rows
_PROPOSAL_ROWS = 256
# seeds are drawn with probability ~ (unexplained fraction) ** _SEED_SHARPNESS: mostly
# rows no group covers yet, without always taking the single worst row (often an outlier)
_SEED_SHARPNESS = 4


def _dense(block):
    return block.toarray() if sp.issparse(block) else np.asarray(block)


def neighbour_groups(X, n_groups, group_size, rng):
    """Row indices of ``X`` to seed ``n_groups`` groups of ``group_size`` atoms each.

    Group ``g`` gets a seed row followed by its ``group_size - 1`` nearest rows by
    ``|cosine|`` among a random pool of at most 2048 rows. Seeds are drawn (as in
    k-means++) with probability increasing with the part of a row outside the span of
    the groups seeded so far, so that two groups rarely start in the same subspace.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Data.
    n_groups, group_size : int
        Number and size of the groups.
    rng : numpy.random.RandomState
        Random generator.

    Returns
    -------
    rows : ndarray of int of shape (n_groups * group_size,)
        Rows of ``X``, group by group.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn._grouping import neighbour_groups
    >>> X = np.repeat(np.eye(3), 4, axis=0)  # three directions, four rows each
    >>> rows = neighbour_groups(X, 3, 2, np.random.RandomState(0))
    >>> pairs = X[rows].reshape(3, 2, 3)
    >>> bool(np.all(pairs[:, 0] == pairs[:, 1]))  # each group seeded in one direction
    True
    """
    n_samples = X.shape[0]
    pool = rng.choice(n_samples, size=min(n_samples, _NEIGHBOUR_POOL), replace=False)
    P = np.asarray(_dense(X[pool]), dtype=np.float64)
    norms = np.linalg.norm(P, axis=1)
    P /= np.where(norms > 0, norms, 1.0)[:, None]
    # fraction of each pool row's squared norm outside the span of the groups seeded so far
    unexplained = (norms > 0).astype(np.float64)
    rows = np.empty((n_groups, group_size), dtype=np.intp)
    for g in range(n_groups):
        weight = unexplained**_SEED_SHARPNESS
        total = weight.sum()
        seed = (rng.choice(pool.shape[0], p=weight / total) if total > 0
                else rng.randint(pool.shape[0]))
        similarity = np.abs(P @ P[seed])
        similarity[seed] = np.inf  # the seed itself comes first
        nearest = np.argsort(-similarity, kind="stable")[:group_size]
        nearest = np.resize(nearest, group_size)
        rows[g] = pool[nearest]
        basis, _ = np.linalg.qr(P[nearest].T)
        explained = np.linalg.norm(P @ basis, axis=1) ** 2
        unexplained = np.minimum(unexplained, np.maximum(1.0 - explained, 0.0))
    return rows.ravel()


def regroup_units(codes, group_size, rng, *, n_proposal_rows=_PROPOSAL_ROWS):
    """Permutation of the units that lowers the group penalty of ``codes``.

    One greedy pass over the units in random order: for unit ``j`` the swap with the
    unit ``k`` of another group that most lowers ``sum_i sum_g ||a_{i,g}||_2`` is found
    on a subsample of rows, then accepted only if it strictly lowers the penalty on
    all rows. The penalty therefore never increases.

    Parameters
    ----------
    codes : ndarray of shape (n_samples, n_components)
        Codes of the current dictionary.
    group_size : int
        Units per group.
    rng : numpy.random.RandomState
        Random generator (order of the units, proposal rows).
    n_proposal_rows : int, default=256
        Rows used to rank the candidate swaps.

    Returns
    -------
    perm : ndarray of int of shape (n_components,)
        New order of the units: apply as ``D[perm]`` and ``codes[:, perm]``.
    n_swaps : int
        Number of accepted swaps.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn._grouping import regroup_units
    >>> on = np.random.RandomState(0).rand(200) < 0.5
    >>> codes = np.column_stack([on, ~on, on, ~on]).astype(float)  # units 0, 2 co-active
    >>> perm, n_swaps = regroup_units(codes, 2, np.random.RandomState(0))
    >>> sorted(map(sorted, perm.reshape(2, 2).tolist()))
    [[0, 2], [1, 3]]
    """
    n_samples, n_components = codes.shape
    perm = np.arange(n_components)
    if group_size == 1 or n_components == group_size or n_samples == 0:
        return perm, 0
    n_groups = n_components // group_size
    A2 = np.square(np.asarray(codes, dtype=np.float64))
    # squared group norms
    N2 = np.ascontiguousarray(A2.reshape(n_samples, n_groups, group_size).sum(axis=2))
    sub = rng.choice(n_samples, size=min(n_samples, n_proposal_rows), replace=False)
    n_swaps = _regroup_pass(A2, N2, sub.astype(np.int64), rng.permutation(n_components),
                            group_size, perm)
    return perm, n_swaps


@njit(cache=True, nogil=True)
def _regroup_pass(A2, N2, sub, order, group_size, perm):
    """The greedy pass of :func:`regroup_units` (``A2``, ``N2`` and ``perm`` updated in place).

    A swap of units ``j`` and ``k`` only changes the penalty of rows where one of them is
    active, so with sparse codes a row where unit ``j`` is inactive costs one test per
    unit instead of two square roots (this kernel replaced a NumPy version that formed
    dense (rows x units) arrays for every unit, the largest cost of a layer fit after
    the code solver). Returns the number of accepted swaps.
    """
    n_samples, n_components = A2.shape
    n_sub = sub.shape[0]
    delta = np.empty(n_components)
    n_swaps = 0
    for j in order:
        g = j // group_size
        # penalty change, on the proposal rows, of swapping j with every unit k
        delta[:] = 0.0
        for t in range(n_sub):
            i = sub[t]
            aj = A2[i, j]
            sg = N2[i, g]
            ng = np.sqrt(sg)
            for k in range(n_components):
                ak = A2[i, k]
                if aj == 0.0 and ak == 0.0:
                    continue  # neither group changes on this row
                sh = N2[i, k // group_size]
                delta[k] += (np.sqrt(max(sg - aj + ak, 0.0)) + np.sqrt(max(sh - ak + aj, 0.0))
                             - ng - np.sqrt(sh))
        k = -1
        best = np.inf
        for m in range(n_components):
            if m // group_size != g and delta[m] < best:
                best = delta[m]
                k = m
        if not best < 0:
            continue
        h = k // group_size
        # the chosen swap must lower the penalty on all rows
        own = 0.0
        other = 0.0
        before = 0.0
        for i in range(n_samples):
            own += np.sqrt(max(N2[i, g] - A2[i, j] + A2[i, k], 0.0))
            other += np.sqrt(max(N2[i, h] - A2[i, k] + A2[i, j], 0.0))
            before += np.sqrt(N2[i, g]) + np.sqrt(N2[i, h])
        # a relative margin: rounding must not let a neutral swap pass as a decrease
        if not own + other < before * (1 - 1e-9):
            continue
        for i in range(n_samples):
            aj = A2[i, j]
            A2[i, j] = A2[i, k]
            A2[i, k] = aj
        pj = perm[j]
        perm[j] = perm[k]
        perm[k] = pj
        for q in (g, h):
            for i in range(n_samples):
                sq = 0.0
                for m in range(q * group_size, (q + 1) * group_size):
                    sq += A2[i, m]
                N2[i, q] = sq
        n_swaps += 1
    return n_swaps
