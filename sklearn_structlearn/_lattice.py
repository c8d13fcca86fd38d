"""Index tables of a lattice: the neighbourhoods of a gather-based convolution and the
blocks of a pooling.

A lattice is a ``(height, width)`` grid of sites in raster order (``r * width + c``). These
tables are the one definition of "neighbouring site" shared by the learner
(:mod:`sklearn_structlearn.sharing`) and the torch export
(:mod:`sklearn_structlearn.export._shared`), which both sit above this module; and where
the pixels of (shuffled) images truly sit, the one definition the topology's scores and
pictures compare with.
"""

import numpy as np

from ._param_validation import int_in, validate_params

__all__ = ["check_grid", "grid_positions", "lattice_neighbourhoods", "lattice_pooling",
           "pool_block"]


def check_grid(grid_shape):
    """``(height, width)`` as two positive ints, or a ValueError naming ``grid_shape``."""
    try:
        h, w = (int(s) for s in grid_shape)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"grid_shape must be (height, width), got {grid_shape!r}.") from exc
    if h < 1 or w < 1:
        raise ValueError(f"grid_shape must be positive, got {grid_shape!r}.")
    return h, w


@validate_params(
    {"grid_shape": "no_validation", "kernel_size": [int_in(1)],
     "site_inputs": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
def lattice_neighbourhoods(grid_shape, kernel_size, *, site_inputs=None):
    """Index table of a gather-based convolution on a lattice.

    Parameters
    ----------
    grid_shape : tuple of (int, int)
        ``(height, width)`` of the lattice; the output sites are its sites (stride 1,
        "same" padding).
    kernel_size : int
        Odd window side ``k``; offsets ``(dr, dc)`` in ``[-k//2, k//2]^2``, raster order.
    site_inputs : array-like of int of shape (height * width,), default=None
        The input at every site (``-1``: empty), e.g. ``InputTopologyLearner.site_inputs_``;
        ``None`` means the inputs are the sites themselves, in raster order.

    Returns
    -------
    index : ndarray of int of shape (height * width, k * k)
        ``index[s, o]``: the input at offset ``o`` of site ``s``, ``-1`` outside the
        lattice or at an empty site.

    Examples
    --------
    >>> from sklearn_structlearn.sharing import lattice_neighbourhoods
    >>> lattice_neighbourhoods((2, 2), 3)[0].tolist()      # site (0, 0) of a 2x2 lattice
    [-1, -1, -1, -1, 0, 1, -1, 2, 3]
    >>> lattice_neighbourhoods((2, 2), 3, site_inputs=[3, 2, 1, 0])[0].tolist()
    [-1, -1, -1, -1, 3, 2, -1, 1, 0]
    """
    h, w = check_grid(grid_shape)
    k = int(kernel_size)
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {k}.")
    r = k // 2
    rows, cols = np.divmod(np.arange(h * w), w)
    dr, dc = np.divmod(np.arange(k * k), k)
    nr = rows[:, None] + dr[None] - r
    nc = cols[:, None] + dc[None] - r
    inside = (nr >= 0) & (nr < h) & (nc >= 0) & (nc < w)
    index = np.where(inside, nr * w + nc, -1)
    if site_inputs is not None:
        site_inputs = np.asarray(site_inputs, dtype=np.int64)
        if site_inputs.shape != (h * w,):
            raise ValueError(
                f"site_inputs must have one entry per site ({h * w}), got {site_inputs.shape}."
            )
        index = np.where(index >= 0, site_inputs[np.maximum(index, 0)], -1)
    return index.astype(np.int64)


@validate_params(
    {"grid_shape": "no_validation", "pool_size": [int_in(1)]},
    prefer_skip_nested_validation=True,
)
def lattice_pooling(grid_shape, pool_size=2):
    """Pooling groups of a lattice: the ``pool_size`` x ``pool_size`` blocks of sites.

    Parameters
    ----------
    grid_shape : tuple of (int, int)
    pool_size : int, default=2
        Block side; along an axis shorter than ``pool_size`` the block spans the whole
        axis. The last rows / columns that do not fill a block are dropped (as
        ``MaxPool2d``).

    Returns
    -------
    index : ndarray of int of shape (n_blocks, block_height * block_width)
        Sites of every block, blocks in raster order of the pooled lattice.
    pooled_shape : tuple of (int, int)
        ``(height // block_height, width // block_width)``.

    Examples
    --------
    >>> from sklearn_structlearn.sharing import lattice_pooling
    >>> index, shape = lattice_pooling((4, 4), 2)
    >>> shape, index[0].tolist(), index[3].tolist()
    ((2, 2), [0, 1, 4, 5], [10, 11, 14, 15])
    """
    h, w = check_grid(grid_shape)
    p = int(pool_size)
    bh, bw = pool_block(grid_shape, p)
    ph, pw = h // bh, w // bw
    br, bc = np.divmod(np.arange(ph * pw), pw)
    dr, dc = np.divmod(np.arange(bh * bw), bw)
    index = (br[:, None] * bh + dr[None]) * w + bc[:, None] * bw + dc[None]
    return index.astype(np.int64), (ph, pw)


def pool_block(grid_shape, pool_size):
    """Block of a pooling of side ``pool_size``, clipped to the lattice."""
    h, w = grid_shape
    return min(pool_size, h), min(pool_size, w)


def grid_positions(image_shape, permutation=None):
    """``(row, column)`` of every feature of (shuffled) flattened images -- for scoring.

    Parameters
    ----------
    image_shape : tuple of (int, int)
        ``(height, width)``; one feature per pixel, C order.
    permutation : array-like of shape (n_features,), default=None
        The fixed shuffle of the data, ``X_shuffled = X[:, permutation]``
        (:func:`~sklearn_structlearn.datasets.permute_pixels`): feature ``j`` of the
        shuffled data is pixel ``permutation[j]``.

    Returns
    -------
    positions : ndarray of int of shape (n_features, 2)

    Examples
    --------
    >>> from sklearn_structlearn.topology import grid_positions
    >>> grid_positions((2, 3)).tolist()
    [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]
    >>> grid_positions((2, 3), permutation=[5, 0, 1, 2, 3, 4])[0].tolist()
    [1, 2]
    """
    h, w = (int(s) for s in image_shape)
    pixels = np.arange(h * w) if permutation is None else np.asarray(permutation)
    if pixels.shape != (h * w,) or not np.array_equal(np.sort(pixels), np.arange(h * w)):
        raise ValueError(f"permutation must be a permutation of range({h * w}).")
    return np.c_[pixels // w, pixels % w].astype(np.int64)
