"""Numba kernels of the input-topology recovery (:mod:`sklearn_structlearn.topology`).

The layout problem: put every input on a site of a 4-connected lattice so that inputs that
are statistically coupled (similarity ``S``) sit next to each other, i.e. maximise

    J = sum over lattice edges (a, b) of S[f(a), f(b)]

over the assignments ``f`` of inputs to sites (a quadratic assignment problem). Three
kernels: a greedy *growth* of the lattice from a seed (only placements that the lattice
geometry pins down), a greedy *fill* of the left-over inputs into the empty sites of a
fixed box, and a pair-swap *local search* on ``J``. Stopping rules, restarts and the
choice of the box are the caller's (plain Python).

Conventions: a canvas or lattice is flattened row-major (site ``r * width + c``); ``-1``
marks an empty site in ``_grow_lattice`` and ``_fill_lattice``; in ``_swap_refine`` the
empty sites hold the index ``n_features`` of an all-zero padding row of ``S``.
"""

import numpy as np
from numba import njit

# Row and column steps of the four lattice directions (right, down, left, up).
_DR = np.array([0, 1, 0, -1])
_DC = np.array([1, 0, -1, 0])


@njit(cache=True, nogil=True)
def _push_empty_neighbours(site, side, canvas, in_frontier, frontier, n_frontier):
    """Append the empty 4-neighbours of ``site`` (``side`` x ``side`` canvas) not yet in the
    frontier; returns the new frontier length."""
    for k in range(4):
        r = site // side + _DR[k]
        c = site % side + _DC[k]
        if 0 <= r < side and 0 <= c < side:
            x = r * side + c
            if canvas[x] < 0 and not in_frontier[x]:
                in_frontier[x] = True
                frontier[n_frontier] = x
                n_frontier += 1
    return n_frontier


@njit(cache=True, nogil=True)
def _placed_neighbours(canvas, site, height, width, out):
    """Inputs on the 4 lattice neighbours of ``site`` (a ``height`` x ``width`` canvas,
    ``-1`` for an empty site), written to ``out``; returns how many."""
    r0 = site // width
    c0 = site % width
    m = 0
    for k in range(4):
        r = r0 + _DR[k]
        c = c0 + _DC[k]
        if 0 <= r < height and 0 <= c < width and canvas[r * width + c] >= 0:
            out[m] = canvas[r * width + c]
            m += 1
    return m


@njit(cache=True, nogil=True)
def _grow_lattice(S, G, common, seed, side):
    """Grow a lattice layout from a seed square (or edge) on a ``side`` x ``side`` canvas.

    At every step one input is placed on one empty site next to the placed ones; only two
    kinds of placement are proposed, both pinned down by the lattice geometry:

    - *corner*: a site with >= 2 placed neighbours takes the free input of largest mean
      similarity to them (two constraints: a wrong input rarely fits both);
    - *straight*: a site ``x = v + d`` with one placed neighbour ``v`` whose opposite site
      ``v - d`` holds ``w`` takes a free graph neighbour ``u`` of ``v`` that is neither a
      neighbour of ``w`` nor shares one with it besides ``v`` -- on a lattice, the
      neighbour of ``v`` opposite to ``w``, not one of the two at right angles.

    The best-scoring proposal wins. Without any proposal (a seed edge, random data) the
    best free input goes next to any placed one. Returns the site of every input.
    """
    n = S.shape[0]
    n_sites = side * side
    canvas = np.full(n_sites, -1, dtype=np.int64)
    pos = np.full(n, -1, dtype=np.int64)
    placed = np.zeros(n, dtype=np.bool_)
    in_frontier = np.zeros(n_sites, dtype=np.bool_)
    frontier = np.empty(n_sites, dtype=np.int64)
    n_frontier = 0
    nb = np.empty(4, dtype=np.int64)
    centre = (side // 2) * side + side // 2
    # Seed square p, a, y, b at (0, 0), (0, 1), (1, 1), (1, 0) from the canvas centre.
    seed_sites = np.array([centre, centre + 1, centre + side + 1, centre + side])
    n_placed = 0
    for i in range(seed.shape[0]):
        u = seed[i]
        canvas[seed_sites[i]] = u
        pos[u] = seed_sites[i]
        placed[u] = True
        n_placed += 1
    for i in range(seed.shape[0]):
        n_frontier = _push_empty_neighbours(seed_sites[i], side, canvas, in_frontier, frontier,
                                            n_frontier)

    while n_placed < n:
        best = -np.inf
        best_site = -1
        best_input = -1
        fallback = -np.inf
        fallback_site = -1
        fallback_input = -1
        for i in range(n_frontier):
            x = frontier[i]
            m = _placed_neighbours(canvas, x, side, side, nb)
            if m >= 2:
                for u in range(n):
                    if placed[u]:
                        continue
                    score = 0.0
                    for j in range(m):
                        score += S[nb[j], u]
                    score /= m
                    if score > best:
                        best = score
                        best_site = x
                        best_input = u
                continue
            v = nb[0]
            # Fallback candidate: any free input next to v.
            for u in range(n):
                if not placed[u] and S[v, u] > fallback:
                    fallback = S[v, u]
                    fallback_site = x
                    fallback_input = u
            r = 2 * (pos[v] // side) - x // side  # the site opposite to x across v
            c = 2 * (pos[v] % side) - x % side
            if not (0 <= r < side and 0 <= c < side) or canvas[r * side + c] < 0:
                continue
            w = canvas[r * side + c]
            for u in range(n):
                if placed[u] or not G[v, u] or G[w, u] or common[w, u] > 1:
                    continue
                if S[v, u] > best:
                    best = S[v, u]
                    best_site = x
                    best_input = u
        if best_site < 0:
            best_site = fallback_site
            best_input = fallback_input
        if best_site < 0:  # no frontier left inside the canvas: cannot happen for side > 2n
            break
        canvas[best_site] = best_input
        pos[best_input] = best_site
        placed[best_input] = True
        n_placed += 1
        # Update the frontier: drop the filled site, add its empty neighbours.
        for i in range(n_frontier):
            if frontier[i] == best_site:
                frontier[i] = frontier[n_frontier - 1]
                n_frontier -= 1
                break
        in_frontier[best_site] = False
        n_frontier = _push_empty_neighbours(best_site, side, canvas, in_frontier, frontier,
                                            n_frontier)
    return pos


@njit(cache=True, nogil=True)
def _fill_lattice(S, site_input, height, width, rest):
    """Put the inputs ``rest`` on the empty sites (``-1``) of a ``height`` x ``width`` lattice.

    Greedy: each step places the (empty site, left-over input) pair of largest mean
    similarity to the site's filled neighbours; sites with more filled neighbours win ties
    (a small bonus per neighbour). ``site_input`` is modified in place.
    """
    n_rest = rest.shape[0]
    done = np.zeros(n_rest, dtype=np.bool_)
    nb = np.empty(4, dtype=np.int64)
    n_sites = height * width
    for _ in range(n_rest):
        best = -np.inf
        best_site = -1
        best_j = -1
        for x in range(n_sites):
            if site_input[x] >= 0:
                continue
            m = _placed_neighbours(site_input, x, height, width, nb)
            if m == 0:
                continue
            for j in range(n_rest):
                if done[j]:
                    continue
                score = 0.0
                for i in range(m):
                    score += S[nb[i], rest[j]]
                score = score / m + 1e-3 * m
                if score > best:
                    best = score
                    best_site = x
                    best_j = j
        if best_site < 0:  # an empty lattice: start in the first empty site
            for x in range(n_sites):
                if site_input[x] < 0:
                    best_site = x
                    break
            for j in range(n_rest):
                if not done[j]:
                    best_j = j
                    break
        site_input[best_site] = rest[best_j]
        done[best_j] = True
    return site_input


@njit(cache=True, nogil=True)
def _swap_refine(S_padded, site_input, neighbours, n_neighbours, max_sweeps):
    """Pair-swap local search on ``J``: swap two sites' inputs whenever ``J`` increases.

    ``S_padded`` has one extra all-zero row and column (index ``n_features``) for the
    empty sites, so that moving an input into a hole is an ordinary swap. Sweeps over all
    site pairs until a sweep makes no improving swap or ``max_sweeps`` is reached.
    Returns the number of sweeps and of swaps.
    """
    n_sites = site_input.shape[0]
    n_swaps = 0
    sweep = 0
    for sweep in range(1, max_sweeps + 1):
        improved = 0
        for a in range(n_sites):
            for b in range(a + 1, n_sites):
                fa = site_input[a]
                fb = site_input[b]
                if fa == fb:
                    continue
                delta = 0.0
                for k in range(n_neighbours[a]):
                    s = neighbours[a, k]
                    if s != b:
                        delta += S_padded[fb, site_input[s]] - S_padded[fa, site_input[s]]
                for k in range(n_neighbours[b]):
                    s = neighbours[b, k]
                    if s != a:
                        delta += S_padded[fa, site_input[s]] - S_padded[fb, site_input[s]]
                if delta > 1e-12:
                    site_input[a] = fb
                    site_input[b] = fa
                    improved += 1
        n_swaps += improved
        if improved == 0:
            break
    return sweep, n_swaps


@njit(cache=True, nogil=True)
def _block_energy(S_padded, site_input, height, width, stamp, mark, r_a, c_a, r_b, c_b, bh, bw):
    """Similarity across the lattice edges that touch two ``bh`` x ``bw`` blocks (each once)."""
    total = 0.0
    for blk in range(2):
        r0 = r_a if blk == 0 else r_b
        c0 = c_a if blk == 0 else c_b
        for i in range(bh):
            for j in range(bw):
                s = (r0 + i) * width + c0 + j
                for k in range(4):
                    r = r0 + i + _DR[k]
                    c = c0 + j + _DC[k]
                    if not (0 <= r < height and 0 <= c < width):
                        continue
                    t = r * width + c
                    if stamp[t] == mark and t < s:
                        continue  # an edge inside the two blocks: counted from t's side
                    total += S_padded[site_input[s], site_input[t]]
    return total


@njit(cache=True, nogil=True)
def _swap_blocks(site_input, width, r_a, c_a, r_b, c_b, bh, bw):
    for i in range(bh):
        for j in range(bw):
            s = (r_a + i) * width + c_a + j
            t = (r_b + i) * width + c_b + j
            tmp = site_input[s]
            site_input[s] = site_input[t]
            site_input[t] = tmp


@njit(cache=True, nogil=True)
def _block_swap_refine(S_padded, site_input, height, width, bh, bw, radius, max_sweeps):
    """Local search on ``J`` by swapping the contents of two disjoint ``bh`` x ``bw`` blocks.

    Repairs the defects pair swaps cannot: a short misplaced segment of a row or column,
    whose inputs are only right together (each single swap lowers ``J``). Blocks at most
    ``radius`` sites apart (per axis) are tried. Returns the number of improving swaps.
    """
    stamp = np.zeros(height * width, dtype=np.int64)
    mark = 0
    n_swaps = 0
    for _ in range(max_sweeps):
        improved = 0
        for r_a in range(height - bh + 1):
            for c_a in range(width - bw + 1):
                for r_b in range(r_a, min(r_a + radius, height - bh) + 1):
                    for c_b in range(max(c_a - radius, 0), min(c_a + radius, width - bw) + 1):
                        if r_b == r_a and c_b <= c_a:
                            continue
                        if abs(r_b - r_a) < bh and abs(c_b - c_a) < bw:
                            continue  # overlapping blocks
                        mark += 1
                        for i in range(bh):
                            for j in range(bw):
                                stamp[(r_a + i) * width + c_a + j] = mark
                                stamp[(r_b + i) * width + c_b + j] = mark
                        before = _block_energy(S_padded, site_input, height, width, stamp, mark,
                                               r_a, c_a, r_b, c_b, bh, bw)
                        _swap_blocks(site_input, width, r_a, c_a, r_b, c_b, bh, bw)
                        after = _block_energy(S_padded, site_input, height, width, stamp, mark,
                                              r_a, c_a, r_b, c_b, bh, bw)
                        if after > before + 1e-12:
                            improved += 1
                        else:
                            _swap_blocks(site_input, width, r_a, c_a, r_b, c_b, bh, bw)
        n_swaps += improved
        if improved == 0:
            break
    return n_swaps


@njit(cache=True, nogil=True)
def _window_refine(S_padded, site_input, height, width, bh, bw, perms, max_sweeps):
    """Local search on ``J`` by rearranging the inputs inside a ``bh`` x ``bw`` window.

    ``perms`` (n_perms, bh * bw) lists the rearrangements tried at every window position
    (cell ``i`` of the window, raster order, takes the input of cell ``perms[p, i]``):
    cyclic shifts of a row or column segment, rotations and flips of a square block --
    the moves that repair a segment slid by one site or a block turned over. Returns the
    number of improving moves.
    """
    n_cells = bh * bw
    stamp = np.zeros(height * width, dtype=np.int64)
    cells = np.empty(n_cells, dtype=np.int64)
    old = np.empty(n_cells, dtype=np.int64)
    mark = 0
    n_moves = 0
    for _ in range(max_sweeps):
        improved = 0
        for r0 in range(height - bh + 1):
            for c0 in range(width - bw + 1):
                mark += 1
                for i in range(bh):
                    for j in range(bw):
                        s = (r0 + i) * width + c0 + j
                        cells[i * bw + j] = s
                        stamp[s] = mark
                        old[i * bw + j] = site_input[s]
                before = _window_energy(S_padded, site_input, height, width, stamp, mark, cells)
                best = before
                best_p = -1
                for p in range(perms.shape[0]):
                    for i in range(n_cells):
                        site_input[cells[i]] = old[perms[p, i]]
                    e = _window_energy(S_padded, site_input, height, width, stamp, mark, cells)
                    if e > best + 1e-12:
                        best = e
                        best_p = p
                for i in range(n_cells):
                    site_input[cells[i]] = old[i] if best_p < 0 else old[perms[best_p, i]]
                if best_p >= 0:
                    improved += 1
        n_moves += improved
        if improved == 0:
            break
    return n_moves


@njit(cache=True, nogil=True)
def _window_energy(S_padded, site_input, height, width, stamp, mark, cells):
    """Similarity across the lattice edges touching the window ``cells`` (each once)."""
    total = 0.0
    for i in range(cells.shape[0]):
        s = cells[i]
        r0 = s // width
        c0 = s % width
        for k in range(4):
            r = r0 + _DR[k]
            c = c0 + _DC[k]
            if not (0 <= r < height and 0 <= c < width):
                continue
            t = r * width + c
            if stamp[t] == mark and t < s:
                continue
            total += S_padded[site_input[s], site_input[t]]
    return total
