"""Recover the topology of the inputs -- which inputs are neighbours, and their layout --
from the statistics of the data alone.

A CNN is told where every pixel sits; this module finds it out. Two inputs that are
neighbours in the world (adjacent pixels) are strongly coupled *given all the others*: their
partial correlation is large, while inputs far apart are, conditionally, nearly
independent. So:

1. :func:`input_similarity`: partial correlations of the inputs, from the inverse of a
   shrunk correlation matrix. Nothing here reads an image shape: any fixed order of the
   inputs gives the same similarities, permuted.
2. :func:`neighbour_graph`: every input's ``n_neighbors`` most similar inputs.
3. :func:`recover_lattice`: the inputs laid out on a 4-connected lattice (the pixel grid
   when the inputs are pixels) by maximising the similarity across lattice edges,

       J = sum over lattice edges (a, b) of S[input at a, input at b],

   a quadratic assignment problem, solved by growing the lattice from seed squares of the
   neighbour graph (only placements the lattice geometry pins down: see
   ``_solvers/_topology.py``), fitting the smallest near-complete box
   (``height * width >= n_features``) that holds most of the grown layout, filling the
   rest in greedily and improving ``J`` by local search (swaps of two sites or of two
   small blocks, rearrangements of small windows); several seeds are tried and the
   layout of largest ``J`` wins. The lattice's shape comes out of the growth; it is never
   given.

:class:`InputTopologyLearner` wraps these as a scikit-learn transformer whose
``transform`` puts the inputs in the recovered lattice order (raster order of the
recovered grid), so that any grid-based model -- a convolution, 2x2 pooling -- can run on
data whose features came in any order.

The recovery is measured against a known grid with :func:`grid_positions` and
:func:`grid_recovery` (exact placement up to the lattice's symmetries, and the fraction
of true neighbours that end up adjacent). ``image_shape`` appears only there: to *score*.

Constant inputs carry no statistics: their similarity rows are zero and they end up in
whatever sites are left. Inputs that are almost always blank (the border pixels of the
digits) have statistics resting on a handful of samples and are often misplaced, by one
site or more; an input is counted as *informative*
when its variance is at least ``1%`` of the median variance
(``INFORMATIVE_VARIANCE_RATIO``), and the recovery is reported over all inputs and over
the informative ones.
"""

from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.covariance import ledoit_wolf_shrinkage
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from ._solvers._topology import (
    _block_swap_refine,
    _fill_lattice,
    _grow_lattice,
    _swap_refine,
    _window_refine,
)
from ._lattice import grid_positions
from ._param_validation import StrOptions, fit_context, int_in, real_in, validate_params

__all__ = [
    "DEFAULT_SHRINKAGE",
    "INFORMATIVE_VARIANCE_RATIO",
    "InputTopologyLearner",
    "LatticeLayout",
    "grid_positions",
    "grid_recovery",
    "input_similarity",
    "lattice_edges",
    "neighbour_graph",
    "recover_lattice",
]

# An input whose variance is below this fraction of the median variance is reported as
# uninformative (e.g. the always-blank border pixels of the digits): its placement rests
# on a handful of samples and is reported apart.
INFORMATIVE_VARIANCE_RATIO = 0.01
# Variance below this fraction of the largest one: a constant input, no statistics at all.
_CONSTANT_RATIO = 1e-12
# Blocks whose contents the local search swaps (rows x columns), besides single sites.
_BLOCKS = ((1, 2), (2, 1), (1, 3), (3, 1), (2, 2))
# Longest row / column segment whose cyclic shift by one site the local search tries.
_MAX_SEGMENT = 12
# ... at most this many sites apart along each axis (layout defects are local).
_BLOCK_RADIUS = 6
# Shrinkage of the correlation matrix before inversion. Measured (2026-11-30) on
# shuffled Fashion-MNIST (20k and 60k images) and the digits, against Ledoit-Wolf's estimate
# (0.001 on Fashion) and 0.01 / 0.02 / 0.05: 0.03 recovered the most pixels on both
# (see benchmarks/RESULTS.md, "Input topology").
DEFAULT_SHRINKAGE = 0.03
# Most elongated complete lattice considered when the number of inputs allows one.
MAX_ASPECT = 4


# --------------------------------------------------------------------------- #
# similarity and neighbour graph
# --------------------------------------------------------------------------- #
#: "ledoit-wolf" or a fixed shrinkage in [0, 1) (1 would erase every correlation)
SHRINKAGE = [real_in(0, 1, closed="left"), StrOptions({"ledoit-wolf"})]


@validate_params({"X": ["array-like"], "shrinkage": SHRINKAGE},
                 prefer_skip_nested_validation=True)
def input_similarity(X, *, shrinkage=DEFAULT_SHRINKAGE):
    """Partial correlations between the inputs (columns) of ``X``.

    The correlation matrix ``R`` of the non-constant inputs is shrunk towards the
    identity, ``R_s = (1 - shrinkage) R + shrinkage I`` (so that the inverse is well
    conditioned for any number of samples, and the rarely-active inputs do not dominate),
    inverted, and normalised::

        S[i, j] = -P[i, j] / sqrt(P[i, i] P[j, j]),   P = inv(R_s)

    the correlation of inputs ``i`` and ``j`` given all the other inputs (large for
    neighbouring pixels, small for pixels that are only correlated through others).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data; the inputs are the columns, in any order.
    shrinkage : float in [0, 1) or "ledoit-wolf", default=DEFAULT_SHRINKAGE
        Shrinkage of the correlation matrix towards the identity; ``"ledoit-wolf"`` uses
        Ledoit and Wolf's estimate (optimal for the covariance, not for the layout: it
        shrinks less than the default on Fashion-MNIST and recovers fewer border pixels).

    Returns
    -------
    similarity : ndarray of shape (n_features, n_features)
        Symmetric, zero diagonal; rows and columns of constant inputs are zero.
    variance : ndarray of shape (n_features,)
        Variance of every input (to tell informative inputs apart).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.topology import input_similarity
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((2000, 4)).cumsum(axis=1)  # a chain x0 - x1 - x2 - x3
    >>> S, variance = input_similarity(z)
    >>> (S > 0.3).astype(int)          # coupled given the others: chain neighbours only
    array([[0, 1, 0, 0],
           [1, 0, 1, 0],
           [0, 1, 0, 1],
           [0, 0, 1, 0]])
    """
    X = np.asarray(X, dtype=np.float64)
    n_samples, n_features = X.shape
    variance = X.var(axis=0)
    similarity = np.zeros((n_features, n_features))
    live = variance > _CONSTANT_RATIO * max(float(variance.max(initial=0.0)), 1e-300)
    if live.sum() >= 2:
        Z = X[:, live] - X[:, live].mean(axis=0)
        Z /= np.sqrt(variance[live])
        if shrinkage == "ledoit-wolf":
            shrinkage = float(ledoit_wolf_shrinkage(Z, assume_centered=True))
        R = Z.T @ Z / n_samples
        R *= 1.0 - shrinkage
        R[np.diag_indices_from(R)] += shrinkage
        # A tiny ridge keeps the inverse finite when shrinkage is 0 and R is singular
        # (fewer samples than inputs, duplicated inputs).
        R[np.diag_indices_from(R)] += 1e-10
        P = np.linalg.inv(R)
        d = np.sqrt(np.diag(P))
        similarity[np.ix_(live, live)] = -P / np.outer(d, d)
    np.fill_diagonal(similarity, 0.0)
    return similarity, variance


@validate_params({"similarity": ["array-like"], "n_neighbors": [int_in(1)]},
                 prefer_skip_nested_validation=True)
def neighbour_graph(similarity, n_neighbors=4):
    """Symmetric graph joining every input to its ``n_neighbors`` most similar inputs.

    Parameters
    ----------
    similarity : array-like of shape (n_features, n_features)
        From :func:`input_similarity`.
    n_neighbors : int, default=4
        Neighbours per input (4 on a 4-connected lattice); the graph is the union of the
        lists, so a node may have more.

    Returns
    -------
    graph : ndarray of bool of shape (n_features, n_features)
        Symmetric adjacency matrix, no self-loops.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.topology import neighbour_graph
    >>> S = np.array([[0, 3, 1], [3, 0, 2], [1, 2, 0]], dtype=float)
    >>> neighbour_graph(S, n_neighbors=1).astype(int)
    array([[0, 1, 0],
           [1, 0, 1],
           [0, 1, 0]])
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    n = similarity.shape[0]
    k = min(n_neighbors, max(n - 1, 0))
    graph = np.zeros((n, n), dtype=bool)
    if k == 0:
        return graph
    masked = similarity.copy()
    np.fill_diagonal(masked, -np.inf)
    # A stable sort: equal similarities keep the input order (deterministic results).
    top = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    graph[np.repeat(np.arange(n), k), top.ravel()] = True
    graph |= graph.T
    np.fill_diagonal(graph, False)
    return graph


# --------------------------------------------------------------------------- #
# lattice layout
# --------------------------------------------------------------------------- #
def lattice_edges(grid_shape):
    """The 4-neighbour edges of a ``height`` x ``width`` lattice, as site-index pairs.

    Sites are numbered in raster order, ``r * width + c``.

    Parameters
    ----------
    grid_shape : tuple of (int, int)

    Returns
    -------
    edges : ndarray of shape (n_edges, 2)
        Horizontal edges first, then vertical ones.

    Examples
    --------
    >>> from sklearn_structlearn.topology import lattice_edges
    >>> lattice_edges((2, 2)).tolist()
    [[0, 1], [2, 3], [0, 2], [1, 3]]
    """
    h, w = (int(s) for s in grid_shape)
    sites = np.arange(h * w).reshape(h, w)
    horizontal = np.c_[sites[:, :-1].ravel(), sites[:, 1:].ravel()]
    vertical = np.c_[sites[:-1].ravel(), sites[1:].ravel()]
    return np.vstack([horizontal, vertical]).astype(np.int64)


def _site_neighbours(grid_shape):
    """Per site, its (up to 4) lattice neighbours padded with -1, and their count."""
    h, w = grid_shape
    neighbours = np.full((h * w, 4), -1, dtype=np.int64)
    count = np.zeros(h * w, dtype=np.int64)
    for a, b in lattice_edges(grid_shape):
        neighbours[a, count[a]] = b
        count[a] += 1
        neighbours[b, count[b]] = a
        count[b] += 1
    return neighbours, count


def _layout_objective(similarity, site_inputs, grid_shape):
    """``J``: total similarity across the lattice edges (empty sites contribute 0)."""
    edges = lattice_edges(grid_shape)
    a, b = site_inputs[edges[:, 0]], site_inputs[edges[:, 1]]
    both = (a >= 0) & (b >= 0)
    return float(similarity[a[both], b[both]].sum())


@dataclass(frozen=True, eq=False)
class LatticeLayout:
    """Inputs laid out on a lattice (the output of :func:`recover_lattice`).

    Attributes
    ----------
    grid_shape : tuple of (int, int)
        ``(height, width)`` of the recovered lattice; ``height * width >= n_features``.
    site_inputs : ndarray of int of shape (height * width,)
        The input at every site (raster order), ``-1`` for an empty site.
    positions : ndarray of int of shape (n_features, 2)
        ``(row, column)`` of every input.
    objective : float
        ``J``, the total similarity across lattice edges.
    objectives : list of float
        ``J`` of every seed tried (the best one is kept).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.topology import LatticeLayout
    >>> layout = LatticeLayout.from_site_inputs(np.array([2, 0, 1, -1]), (2, 2))
    >>> layout.positions.tolist()
    [[0, 1], [1, 0], [0, 0]]
    """

    grid_shape: tuple
    site_inputs: np.ndarray = field(repr=False)
    positions: np.ndarray = field(repr=False)
    objective: float = float("nan")
    objectives: list = field(default_factory=list, repr=False)

    @classmethod
    def from_site_inputs(cls, site_inputs, grid_shape, **kwargs):
        """Build the record from the input of every site.

        Parameters
        ----------
        site_inputs : array-like of int of shape (height * width,)
            Input at every site, ``-1`` for an empty site; every input once.
        grid_shape : tuple of (int, int)
        **kwargs
            ``objective`` and ``objectives``.

        Returns
        -------
        layout : LatticeLayout
        """
        h, w = (int(s) for s in grid_shape)
        site_inputs = np.asarray(site_inputs, dtype=np.int64)
        filled = np.flatnonzero(site_inputs >= 0)
        n = filled.size
        if site_inputs.shape != (h * w,) or not np.array_equal(
            np.sort(site_inputs[filled]), np.arange(n)
        ):
            raise ValueError(
                f"site_inputs must hold every input 0..n-1 once on a {h}x{w} lattice."
            )
        positions = np.empty((n, 2), dtype=np.int64)
        positions[site_inputs[filled]] = np.c_[filled // w, filled % w]
        return cls(grid_shape=(h, w), site_inputs=site_inputs, positions=positions, **kwargs)

    @property
    def n_features(self):
        return self.positions.shape[0]


def _seed_squares(similarity, graph, n_init):
    """Up to ``n_init`` seed 4-cycles ``(p, a, y, b)`` of the graph, strongest first.

    A square's strength is its weakest edge; seeds are drawn from distinct inputs so
    that restarts grow from different places. Without any square (no lattice structure,
    tiny inputs) the strongest edge is the single seed.
    """
    n = similarity.shape[0]
    squares = []
    for p in range(n):
        nb = np.flatnonzero(graph[p])
        for i, a in enumerate(nb):
            for b in nb[i + 1:]:
                if graph[a, b]:
                    continue  # a triangle, not a lattice corner
                ys = np.flatnonzero(graph[a] & graph[b] & ~graph[p])
                for y in ys[ys != p]:
                    strength = min(similarity[p, a], similarity[p, b], similarity[a, y],
                                   similarity[b, y])
                    squares.append((strength, p, a, y, b))
    if not squares:
        if n < 2:
            return [np.array([0], dtype=np.int64)] if n else []
        masked = similarity + np.where(graph, 0.0, -np.inf)
        np.fill_diagonal(masked, -np.inf)
        if not np.isfinite(masked).any():
            masked = similarity.copy()
            np.fill_diagonal(masked, -np.inf)
        p, a = np.unravel_index(int(np.argmax(masked)), masked.shape)
        return [np.array([p, a], dtype=np.int64)]
    squares.sort(key=lambda s: (-s[0], s[1:]))
    seeds, used = [], np.zeros(n, dtype=bool)
    for strength, *members in squares:
        if used[members].any():
            continue
        seeds.append(np.array(members, dtype=np.int64))
        used[members] = True
        if len(seeds) == n_init:
            break
    return seeds


def _candidate_boxes(positions, n, n_boxes):
    """The near-complete boxes holding most grown inputs, best first.

    A box is ``(height, width, row0, col0)`` with ``height * width >= n`` and fewer than
    ``min(height, width)`` empty sites (the shapes a full grid of ``n`` inputs can have).
    """
    rows, cols = positions[:, 0], positions[:, 1]
    H, W = int(rows.max()) + 1, int(cols.max()) + 1
    occupied = np.zeros((H, W))
    occupied[rows, cols] = 1.0
    integral = np.pad(occupied.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    boxes = []
    # Complete lattices (height * width == n, aspect at most MAX_ASPECT) when n has
    # such a factorisation; otherwise near-complete ones (fewer empty sites than a row).
    shapes = [(h, n // h) for h in range(1, n + 1)
              if n % h == 0 and max(h, n // h) <= MAX_ASPECT * min(h, n // h)]
    if not shapes:
        shapes = [(h, -(-n // h)) for h in range(1, n + 1)
                  if h * -(-n // h) - n < min(h, -(-n // h))]
    for h, w in shapes:
        for r0 in range(min(0, H - h), max(H - h, 0) + 1):
            for c0 in range(min(0, W - w), max(W - w, 0) + 1):
                R0, R1 = max(r0, 0), min(r0 + h, H)
                C0, C1 = max(c0, 0), min(c0 + w, W)
                inside = 0.0
                if R1 > R0 and C1 > C0:
                    inside = (integral[R1, C1] - integral[R0, C1] - integral[R1, C0]
                              + integral[R0, C0])
                boxes.append((inside, h, w, r0, c0))
    boxes.sort(key=lambda b: (-b[0], abs(b[1] - b[2]), b[1:]))
    return [b[1:] for b in boxes[:n_boxes]]


def _window_moves():
    """Rearrangements of small windows tried by the local search: ``((bh, bw), perms)``.

    - every permutation of a 2x3 or 3x2 window (720 each: any local defect of up to six
      sites);
    - the 7 non-trivial symmetries (rotations, flips) of a 3x3 block;
    - cyclic shifts by one site of row and column segments of 2 to ``_MAX_SEGMENT`` sites;
    - for strips of two rows (columns) and 3 to ``_MAX_SEGMENT`` sites: the two lines
      exchanged, both shifted by one site, or both -- a border strip laid in with its
      lines crossed and slid by one, which no short move undoes.
    """
    from itertools import permutations

    moves = []
    for shape in ((2, 3), (3, 2)):
        perms = np.array(list(permutations(range(6)))[1:])
        moves.append((shape, perms))
    block = np.arange(9).reshape(3, 3)
    variants = {tuple(np.rot90(b, k).ravel()) for b in (block, block.T) for k in range(4)}
    variants.discard(tuple(block.ravel()))
    moves.append(((3, 3), np.array(sorted(variants))))
    for length in range(2, _MAX_SEGMENT + 1):
        idx = np.arange(length)
        shifts = np.array([np.roll(idx, 1), np.roll(idx, -1)])
        moves.append(((1, length), shifts))
        moves.append(((length, 1), shifts))
        if length < 3:
            continue
        strip = np.arange(2 * length).reshape(length, 2)  # rows: along the strip
        variants = []
        for swap in (False, True):
            for shift in (0, 1, -1):
                v = strip[:, ::-1] if swap else strip
                v = np.roll(v, shift, axis=0)
                if swap or shift:
                    variants.append(v)
        moves.append(((length, 2), np.array([v.ravel() for v in variants])))
        moves.append(((2, length), np.array([v.T.ravel() for v in variants]).reshape(
            len(variants), -1)))
    return moves


def _place_in_box(similarity, S_padded, positions, box, max_sweeps):
    """Keep the grown inputs inside ``box``, fill in the others, refine by swaps."""
    n = similarity.shape[0]
    h, w, r0, c0 = box
    rows, cols = positions[:, 0] - r0, positions[:, 1] - c0
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    site_inputs = np.full(h * w, -1, dtype=np.int64)
    site_inputs[rows[inside] * w + cols[inside]] = np.flatnonzero(inside)
    rest = np.flatnonzero(~inside).astype(np.int64)
    _fill_lattice(similarity, site_inputs, h, w, rest)
    padded = np.where(site_inputs >= 0, site_inputs, n)
    _local_search(S_padded, padded, (h, w), max_sweeps)
    site_inputs = np.where(padded < n, padded, -1)
    return site_inputs, _layout_objective(similarity, site_inputs, (h, w))


def _local_search(S_padded, padded, grid_shape, max_sweeps):
    """Improve ``J`` in place until no move does: pair swaps, block swaps, window moves."""
    h, w = grid_shape
    neighbours, count = _site_neighbours((h, w))
    _swap_refine(S_padded, padded, neighbours, count, max_sweeps)
    for _ in range(max_sweeps):
        moved = 0
        for bh, bw in _BLOCKS:
            if bh <= h and bw <= w:
                moved += _block_swap_refine(S_padded, padded, h, w, bh, bw, _BLOCK_RADIUS,
                                            max_sweeps)
        for (bh, bw), perms in _window_moves():
            if bh <= h and bw <= w:
                moved += _window_refine(S_padded, padded, h, w, bh, bw, perms, max_sweeps)
        if moved == 0:
            break
        _swap_refine(S_padded, padded, neighbours, count, max_sweeps)


@validate_params(
    {"similarity": ["array-like"], "n_neighbors": [int_in(1)], "n_init": [int_in(1)],
     "n_boxes": [int_in(1)], "max_sweeps": [int_in(0)]},
    prefer_skip_nested_validation=True,
)
def recover_lattice(similarity, *, n_neighbors=4, n_init=8, n_boxes=3, max_sweeps=100):
    """Lay the inputs out on a 4-connected lattice, neighbours next to each other.

    Maximises ``J = sum over lattice edges (a, b) of similarity[input at a, input at b]``
    over the layouts (see the module docstring). Per seed square of the
    :func:`neighbour_graph` (``n_init`` seeds, strongest first): grow a layout (Numba
    kernel ``_grow_lattice``), take the ``n_boxes`` near-complete boxes that hold most of
    it, fill each with the left-over inputs and improve it by pair swaps; the layout of
    largest ``J`` over seeds and boxes wins. The lattice shape is the winning box's: it is
    found, not given.

    Parameters
    ----------
    similarity : array-like of shape (n_features, n_features)
        Symmetric similarity of the inputs (:func:`input_similarity`).
    n_neighbors : int, default=4
        Neighbours per input of the graph the growth follows (4 on a 4-connected lattice).
    n_init : int, default=8
        Seeds (growths) tried.
    n_boxes : int, default=3
        Candidate boxes per growth.
    max_sweeps : int, default=100
        Cap on the sweeps of the pair-swap local search.

    Returns
    -------
    layout : LatticeLayout

    Examples
    --------
    A 6 x 5 grid whose similarity is 1 between 4-neighbours, inputs shuffled:

    >>> import numpy as np
    >>> from sklearn_structlearn.topology import grid_positions, grid_recovery, recover_lattice
    >>> true = grid_positions((6, 5), permutation=np.random.default_rng(0).permutation(30))
    >>> S = (np.abs(true[:, None] - true[None]).sum(-1) == 1).astype(float)
    >>> layout = recover_lattice(S)
    >>> layout.grid_shape in [(6, 5), (5, 6)]
    True
    >>> grid_recovery(layout.positions, true, layout.grid_shape)["exact"]
    1.0
    """
    similarity = np.ascontiguousarray(similarity, dtype=np.float64)
    if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(f"similarity must be a square matrix, got shape {similarity.shape}.")
    n = similarity.shape[0]
    if n == 0:
        raise ValueError("similarity is empty: at least one input is needed.")
    if n == 1:
        return LatticeLayout.from_site_inputs(np.array([0]), (1, 1), objective=0.0,
                                              objectives=[0.0])
    graph = neighbour_graph(similarity, n_neighbors)
    gi = graph.astype(np.int32)
    common = gi @ gi
    S_padded = np.zeros((n + 1, n + 1))
    S_padded[:n, :n] = similarity
    # Room for the growth in every direction from the central seed, as long as the
    # lattice is not much more elongated than ~4:1.
    side = min(2 * n + 3, 4 * int(np.ceil(np.sqrt(n))) + 8)
    best, objectives = None, []
    for seed in _seed_squares(similarity, graph, n_init):
        sites = _grow_lattice(similarity, graph, common, seed, side)
        positions = np.c_[sites // side, sites % side]
        positions -= positions.min(axis=0)
        for box in _candidate_boxes(positions, n, n_boxes):
            site_inputs, objective = _place_in_box(similarity, S_padded, positions, box,
                                                   max_sweeps)
            objectives.append(objective)
            if best is None or objective > best[0] + 1e-12:
                best = (objective, site_inputs, box[:2])
    objective, site_inputs, grid_shape = best
    return LatticeLayout.from_site_inputs(site_inputs, grid_shape, objective=objective,
                                          objectives=objectives)


# --------------------------------------------------------------------------- #
# scoring against a known grid
# --------------------------------------------------------------------------- #
def _lattice_symmetries(grid_shape, target_shape):
    """Maps ``(rows, cols) -> (rows, cols)`` taking a ``grid_shape`` lattice onto ``target_shape``.

    The symmetries of the rectangle (flips; transposes too when the shapes allow).
    """
    h, w = grid_shape
    maps = []
    for transpose in (False, True):
        hh, ww = (w, h) if transpose else (h, w)
        if (hh, ww) != tuple(target_shape):
            continue
        for flip_r in (False, True):
            for flip_c in (False, True):
                def apply(p, transpose=transpose, flip_r=flip_r, flip_c=flip_c, hh=hh, ww=ww):
                    q = p[:, ::-1].copy() if transpose else p.copy()
                    if flip_r:
                        q[:, 0] = hh - 1 - q[:, 0]
                    if flip_c:
                        q[:, 1] = ww - 1 - q[:, 1]
                    return q

                name = ("transpose " if transpose else "") + {
                    (False, False): "identity", (True, False): "flip rows",
                    (False, True): "flip columns", (True, True): "rotate 180",
                }[flip_r, flip_c]
                maps.append((name, apply))
    return maps


def _adjacent(positions, i, j):
    return np.abs(positions[i] - positions[j]).sum(axis=1) == 1


def grid_recovery(positions, true_positions, grid_shape=None, *, mask=None):
    """How well a recovered layout matches a known grid.

    Parameters
    ----------
    positions : array-like of int of shape (n_features, 2)
        Recovered ``(row, column)`` of every input (``LatticeLayout.positions``).
    true_positions : array-like of int of shape (n_features, 2)
        The truth, e.g. :func:`grid_positions`.
    grid_shape : tuple of (int, int), default=None
        Shape of the recovered lattice (default: the extent of ``positions``).
    mask : array-like of bool of shape (n_features,), default=None
        Score only these inputs (e.g. the informative ones); pairs need both ends in it.

    Returns
    -------
    scores : dict
        - ``neighbours``: fraction of the true 4-neighbour pairs that are adjacent in the
          recovered layout (blind to the grid's symmetries);
        - ``false_neighbours``: fraction of the recovered adjacent pairs that are not true
          neighbours;
        - ``exact``: fraction of inputs at their true site under the best symmetry of the
          grid (flips, transposition), 0 when the shapes differ; ``exact_grid`` is
          ``exact == 1``;
        - ``symmetry``: that symmetry's name (``None`` when the shapes differ).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.topology import grid_positions, grid_recovery
    >>> true = grid_positions((3, 3))
    >>> flipped = true.copy(); flipped[:, 1] = 2 - flipped[:, 1]
    >>> scores = grid_recovery(flipped, true)
    >>> scores["exact"], scores["symmetry"], scores["neighbours"]
    (1.0, 'flip columns', 1.0)
    """
    positions = np.asarray(positions, dtype=np.int64)
    true_positions = np.asarray(true_positions, dtype=np.int64)
    if positions.shape != true_positions.shape or positions.ndim != 2 or positions.shape[1] != 2:
        raise ValueError(
            f"positions {positions.shape} and true_positions {true_positions.shape} must both "
            "have shape (n_features, 2)."
        )
    n = positions.shape[0]
    keep = np.ones(n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if grid_shape is None:
        grid_shape = tuple(int(v) + 1 for v in positions.max(axis=0))
    true_shape = tuple(int(v) + 1 for v in true_positions.max(axis=0))

    i, j = np.triu_indices(n, 1)
    pairs = keep[i] & keep[j]
    i, j = i[pairs], j[pairs]
    true_adj = _adjacent(true_positions, i, j)
    rec_adj = _adjacent(positions, i, j)
    neighbours = float((rec_adj & true_adj).sum() / max(true_adj.sum(), 1))
    false_neighbours = float((rec_adj & ~true_adj).sum() / max(rec_adj.sum(), 1))

    exact, symmetry = 0.0, None
    for name, apply in _lattice_symmetries(tuple(grid_shape), true_shape):
        score = float(np.mean((apply(positions) == true_positions).all(axis=1)[keep]))
        if score > exact or symmetry is None:
            exact, symmetry = score, name
    return {
        "neighbours": neighbours,
        "false_neighbours": false_neighbours,
        "exact": exact,
        "exact_grid": exact == 1.0,
        "symmetry": symmetry,
    }


# --------------------------------------------------------------------------- #
# estimator
# --------------------------------------------------------------------------- #
class InputTopologyLearner(TransformerMixin, BaseEstimator):
    """Recover the lattice layout of the inputs from data, and reorder them onto it.

    Fits :func:`input_similarity` (partial correlations), then :func:`recover_lattice`.
    ``transform`` returns the data in the raster order of the recovered lattice (empty
    sites, if any, are zeros), so a grid model (a convolution, 2x2 pooling) can run on
    inputs that came in any order -- e.g. images whose pixels were shuffled by one fixed
    permutation. Nothing here reads an image shape.

    Parameters
    ----------
    n_neighbors : int, default=4
        Neighbours per input of the neighbour graph (4 on a 4-connected lattice).
    shrinkage : float in [0, 1) or "ledoit-wolf", default=0.03
        Shrinkage of the correlation matrix (see :func:`input_similarity`).
    n_init : int, default=8
        Seeds of the lattice growth tried (see :func:`recover_lattice`).
    max_sweeps : int, default=100
        Cap on the sweeps of the pair-swap refinement.

    Attributes
    ----------
    similarity_ : ndarray of shape (n_features_in, n_features_in)
        Partial correlations of the inputs.
    variance_ : ndarray of shape (n_features_in,)
        Variance of every input.
    informative_ : ndarray of bool of shape (n_features_in,)
        Inputs whose variance is at least ``INFORMATIVE_VARIANCE_RATIO`` of the median.
    neighbours_ : ndarray of bool of shape (n_features_in, n_features_in)
        The neighbour graph (:func:`neighbour_graph`).
    layout_ : LatticeLayout
        The recovered layout.
    grid_shape_ : tuple of (int, int)
        ``(height, width)`` of the recovered lattice.
    positions_ : ndarray of int of shape (n_features_in, 2)
        ``(row, column)`` of every input on the recovered lattice.
    site_inputs_ : ndarray of int of shape (height * width,)
        Input at every lattice site (raster order), ``-1`` for an empty site.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has feature names that are all strings.

    Examples
    --------
    Smooth random images on an 8 x 6 grid, pixels shuffled; the grid comes back:

    >>> import numpy as np
    >>> from scipy.ndimage import gaussian_filter
    >>> from sklearn_structlearn.topology import (
    ...     InputTopologyLearner, grid_positions, grid_recovery)
    >>> rng = np.random.default_rng(0)
    >>> images = gaussian_filter(rng.standard_normal((3000, 8, 6)), (0, 1, 1), mode="nearest")
    >>> perm = rng.permutation(48)
    >>> X = images.reshape(3000, 48)[:, perm]
    >>> topo = InputTopologyLearner().fit(X)
    >>> topo.grid_shape_ in [(8, 6), (6, 8)]
    True
    >>> grid_recovery(topo.positions_, grid_positions((8, 6), perm))["exact"]
    1.0
    >>> topo.transform(X).shape
    (3000, 48)
    """

    def __init__(self, n_neighbors=4, shrinkage=DEFAULT_SHRINKAGE, n_init=8, max_sweeps=100):
        self.n_neighbors = n_neighbors
        self.shrinkage = shrinkage
        self.n_init = n_init
        self.max_sweeps = max_sweeps

    _parameter_constraints = {
        "n_neighbors": [int_in(1)],
        "shrinkage": SHRINKAGE,
        "n_init": [int_in(1)],
        "max_sweeps": [int_in(0)],
    }

    @fit_context
    def fit(self, X, y=None):
        """Recover the layout of the inputs from ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; needs at least 2 samples.
        y : None
            Ignored.

        Returns
        -------
        self : InputTopologyLearner
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        similarity, variance = input_similarity(X, shrinkage=self.shrinkage)
        live = variance[variance > 0]
        median = float(np.median(live)) if live.size else 0.0
        layout = recover_lattice(similarity, n_neighbors=self.n_neighbors, n_init=self.n_init,
                                 max_sweeps=self.max_sweeps)
        self.similarity_ = similarity
        self.variance_ = variance
        self.informative_ = variance >= INFORMATIVE_VARIANCE_RATIO * median
        self.informative_ &= variance > 0
        self.neighbours_ = neighbour_graph(similarity, self.n_neighbors)
        self.layout_ = layout
        self.grid_shape_ = layout.grid_shape
        self.positions_ = layout.positions
        self.site_inputs_ = layout.site_inputs
        return self

    def transform(self, X):
        """Reorder the inputs onto the recovered lattice (raster order).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_lattice : ndarray of shape (n_samples, height * width)
            Column ``r * width + c`` is the input at site ``(r, c)``; empty sites are 0.
            Same dtype as ``X`` (float32 stays float32).
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        sites = self.site_inputs_
        out = np.zeros((X.shape[0], sites.shape[0]), dtype=X.dtype)
        filled = sites >= 0
        out[:, filled] = X[:, sites[filled]]
        return out

    def inverse_transform(self, X):
        """Back from lattice order to the original order of the inputs.

        Parameters
        ----------
        X : array-like of shape (n_samples, height * width)

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in)
        """
        check_is_fitted(self)
        X = np.asarray(X)
        sites = self.site_inputs_
        if X.ndim != 2 or X.shape[1] != sites.shape[0]:
            raise ValueError(
                f"X must have {sites.shape[0]} columns (one per lattice site), got shape "
                f"{X.shape}."
            )
        filled = sites >= 0
        out = np.empty((X.shape[0], self.n_features_in_), dtype=X.dtype)
        out[:, sites[filled]] = X[:, filled]
        return out

    def get_feature_names_out(self, input_features=None):
        """Names of the lattice sites, ``site<row>_<col>``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Checked against ``feature_names_in_``; the output names do not depend on it.

        Returns
        -------
        feature_names_out : ndarray of str
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features)
        h, w = self.grid_shape_
        return np.asarray([f"site{r}_{c}" for r in range(h) for c in range(w)], dtype=object)

    def recovery(self, image_shape, permutation=None):
        """Score the recovered layout against a known pixel grid (:func:`grid_recovery`).

        Parameters
        ----------
        image_shape : tuple of (int, int)
            The true grid -- used only here, to score.
        permutation : array-like of shape (n_features,), default=None
            The fixed shuffle the training data went through.

        Returns
        -------
        scores : dict
            :func:`grid_recovery` over all inputs, plus the same scores over the
            informative inputs with the suffix ``_informative``, and
            ``n_uninformative``.
        """
        check_is_fitted(self)
        truth = grid_positions(image_shape, permutation)
        scores = grid_recovery(self.positions_, truth, self.grid_shape_)
        informative = grid_recovery(self.positions_, truth, self.grid_shape_,
                                    mask=self.informative_)
        scores.update({f"{k}_informative": v for k, v in informative.items()})
        scores["n_uninformative"] = int((~self.informative_).sum())
        return scores

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
