"""Contiguous groups of units and pooling over them.

Units (atoms, code coordinates) are split into contiguous groups of ``group_size``:
group ``g`` holds units ``g * group_size ... (g + 1) * group_size - 1``. Contiguous
blocks keep every kernel free of index arrays and let pooling be a reshape.
"""

import numpy as np

POOLINGS = ("l2", "max", None)


def n_groups_of(n_components, group_size):
    """Number of groups, checking that ``group_size`` divides ``n_components``."""
    if n_components % group_size != 0:
        raise ValueError(
            f"n_components={n_components} must be a multiple of group_size={group_size}."
        )
    return n_components // group_size


def pool_codes(codes, group_size, pooling="l2"):
    """Pool raw codes over contiguous groups of units.

    Parameters
    ----------
    codes : ndarray of shape (n_samples, n_components)
        Raw codes.
    group_size : int
        Number of consecutive units per group.
    pooling : {"l2", "max"} or None
        ``"l2"``: Euclidean norm of each group's codes (the group's activation, invariant
        to what varies inside the group); ``"max"``: largest absolute code of the group;
        ``None``: the raw codes are returned unchanged.

    Returns
    -------
    pooled : ndarray of shape (n_samples, n_components // group_size)
        Same dtype as ``codes``; ``codes`` itself when ``pooling`` is None.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn._groups import pool_codes
    >>> pool_codes(np.array([[3.0, 4.0, 0.0, -1.0]]), 2, "l2")
    array([[5., 1.]])
    """
    if pooling is None:
        return codes
    n_samples, n_components = codes.shape
    blocks = codes.reshape(n_samples, n_groups_of(n_components, group_size), group_size)
    if pooling == "l2":
        # squares summed in float64: float32 codes of 1e+30 (1e-30) data would overflow to inf
        # (underflow to 0) when squared in float32
        return np.sqrt(np.einsum("ngk,ngk->ng", blocks, blocks, dtype=np.float64)).astype(
            codes.dtype, copy=False)
    if pooling == "max":
        return np.abs(blocks).max(axis=2)
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")


def input_group_pointers(input_groups, n_features):
    """Turn per-input group labels into (order, ptr) for the dictionary kernel.

    ``order[ptr[h]:ptr[h + 1]]`` are the inputs of the h-th input group. ``None`` means
    every input is its own group (an L1 penalty on the atoms), signalled by an empty
    ``order`` so the kernel takes its element-wise fast path.
    """
    if input_groups is None:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    labels = np.asarray(input_groups)
    if labels.ndim != 1 or labels.shape[0] != n_features:
        raise ValueError(
            f"input_groups must be a 1-d array of length n_features={n_features} giving the "
            f"group label of each input, got shape {labels.shape}."
        )
    if labels.dtype.kind == "f" and not np.all(np.isfinite(labels)):
        # np.unique would make NaN one more group: a missing label is a bug upstream
        raise ValueError("input_groups must hold finite labels (ints or strings), got NaN or inf.")
    _, inverse = np.unique(labels, return_inverse=True)
    order = np.argsort(inverse, kind="stable").astype(np.int64)
    counts = np.bincount(inverse)
    ptr = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return order, ptr
