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
    group = perm // group_size
    A2 = np.square(np.asarray(codes, dtype=np.float64))
    N2 = A2.reshape(n_samples, n_groups, group_size).sum(axis=2)  # squared group norms
    sub = rng.choice(n_samples, size=min(n_samples, n_proposal_rows), replace=False)
    n_swaps = 0
    for j in rng.permutation(n_components):
        g = group[j]
        a2, s2 = A2[sub], N2[sub]
        norms = np.sqrt(s2)
        # penalty change, on the proposal rows, of swapping j with every unit k
        own = np.sqrt(np.maximum(s2[:, [g]] - a2[:, [j]] + a2, 0.0))
        other = np.sqrt(np.maximum(s2[:, group] - a2 + a2[:, [j]], 0.0))
        delta = (own + other).sum(axis=0) - norms[:, g].sum() - norms[:, group].sum(axis=0)
        delta[group == g] = np.inf
        k = int(np.argmin(delta))
        if not delta[k] < 0:
            continue
        h = group[k]
        own = np.sqrt(np.maximum(N2[:, g] - A2[:, j] + A2[:, k], 0.0)).sum()
        other = np.sqrt(np.maximum(N2[:, h] - A2[:, k] + A2[:, j], 0.0)).sum()
        before = np.sqrt(N2[:, g]).sum() + np.sqrt(N2[:, h]).sum()
        # a relative margin: rounding must not let a neutral swap pass as a decrease
        if not own + other < before * (1 - 1e-9):
            continue
        A2[:, [j, k]] = A2[:, [k, j]]
        perm[[j, k]] = perm[[k, j]]
        for q in (g, h):
            N2[:, q] = A2[:, q * group_size:(q + 1) * group_size].sum(axis=1)
        n_swaps += 1
    return perm, n_swaps
