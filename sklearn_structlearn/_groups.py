"""Contiguous groups of units: group norms, the group soft-threshold and pooling (NumPy).

Units (atoms, code coordinates) are split into contiguous groups of ``group_size``:
group ``g`` holds units ``g * group_size ... (g + 1) * group_size - 1``. Contiguous
blocks keep every kernel free of index arrays and let pooling be a reshape.

This is the one NumPy definition of the group norm, its proximal operator, the
feed-forward codes built on it (``threshold_codes``) and the pooling, used by the
objective (``objective.py``), the estimators and the NumPy reference of the exported
network (``export/_reference.py``). The Numba kernels have
their own (compiled) group prox in ``_solvers``; the torch modules theirs in
``export/_modules.py``; the tests check all three against each other.
"""

import numpy as np

POOLINGS = ("l2", "max", None)
# what a layer's transform may code with: the objective's codes, or one prox step
TRANSFORM_ALGORITHMS = ("lasso", "threshold")
# threshold_codes works on blocks of rows whose float64 correlations take about this many
# bytes: the output is the only n x n_components array it holds in full
THRESHOLD_BLOCK_BYTES = 64 * 2**20


def n_groups_of(n_components, group_size):
    """Number of groups, checking that ``group_size`` divides ``n_components``."""
    if n_components % group_size != 0:
        raise ValueError(
            f"n_components={n_components} must be a multiple of group_size={group_size}."
        )
    return n_components // group_size


def group_blocks(V, group_size):
    """``V`` (n_samples x n_components) as (n_samples, n_groups, group_size), a view."""
    n, k = V.shape
    return V.reshape(n, n_groups_of(k, group_size), group_size)


def group_norms(V, group_size):
    """Euclidean norm of every group of every row, shape (n_samples, n_groups), float64.

    The squares are summed in float64 whatever the dtype of ``V``: float32 codes of 1e+30
    (1e-30) data would overflow to inf (underflow to 0) when squared in float32.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn._groups import group_norms
    >>> group_norms(np.array([[3.0, 4.0, 0.0, -1.0]]), 2)
    array([[5., 1.]])
    """
    V = np.asarray(V)
    if group_size == 1:
        # the norm of a single unit is its magnitude: no square to overflow, 2-3x faster
        return np.abs(V).astype(np.float64, copy=False)
    blocks = group_blocks(V, group_size)
    return np.sqrt(np.einsum("ngk,ngk->ng", blocks, blocks, dtype=np.float64))


def group_soft_threshold(V, threshold, group_size, positive=False):
    """Proximal operator of ``threshold * sum_g ||v_g||_2`` (+ non-negativity), row-wise.

    Each group is shrunk towards zero by ``threshold`` in norm:
    ``v_g * max(0, ||v_g|| - threshold) / ||v_g||``. With ``positive=True`` the prox of
    the norm plus the non-negativity constraint is this shrinkage applied to
    ``max(v, 0)`` (the two commute because the group norm is radial).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn._groups import group_soft_threshold
    >>> group_soft_threshold(np.array([[3.0, 4.0, 0.1, 0.0]]), 1.0, 2)
    array([[2.4, 3.2, 0. , 0. ]])
    """
    V = np.asarray(V, dtype=np.float64)
    if positive:
        V = np.maximum(V, 0.0)
    blocks = group_blocks(V, group_size)
    norms = group_norms(V, group_size)[..., None]
    shrunk = np.maximum(norms - threshold, 0.0)
    # Where the norm does not exceed the threshold the group is zero: divide by 1 there.
    scale = shrunk / np.where(norms > threshold, norms, 1.0)
    return (blocks * scale).reshape(V.shape)


def threshold_codes(X, dictionary, alpha, group_size, positive):
    """Feed-forward codes: one proximal-gradient step from zero codes, ``prox(X D^T)``.

    The group soft-threshold at ``alpha`` (of the non-negative part with ``positive``)
    of the correlations with the atoms -- what a layer's ``transform`` returns with
    ``transform_algorithm="threshold"``, and the ``"feedforward"`` torch export before
    any training. With unit step, the step is exact for orthonormal atoms; for coherent
    atoms the codes are denser than the objective's (atoms that explain the same part of
    a row are all kept). Coates & Ng (2011) found this encoder as good as the sparse
    codes for classification on a dictionary learned by sparse coding. One product, no
    solve: ``X`` dense or sparse, the codes dense, in ``X``'s dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn._groups import threshold_codes
    >>> threshold_codes(np.array([[3.0, 4.0]]), np.eye(2), 1.0, 2, False)
    array([[2.4, 3.2]])
    """
    n_components = dictionary.shape[0]
    codes = np.empty((X.shape[0], n_components), dtype=X.dtype)
    block = max(1, THRESHOLD_BLOCK_BYTES // (8 * n_components))
    for start in range(0, X.shape[0], block):
        rows = slice(start, start + block)
        codes[rows] = group_soft_threshold(np.asarray(X[rows] @ dictionary.T), alpha,
                                           group_size, positive)
    return codes


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
    if pooling == "l2":
        return group_norms(codes, group_size).astype(codes.dtype, copy=False)
    if pooling == "max":
        return np.abs(group_blocks(codes, group_size)).max(axis=2)
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")


def _group_labels(input_groups):
    """The labels as an array: of their own dtype when they are all numbers or all
    strings (``np.asarray`` would turn ``[1, "1"]`` into two equal strings), of objects
    otherwise."""
    if isinstance(input_groups, np.ndarray) or hasattr(input_groups, "dtype"):
        return np.asarray(input_groups)
    values = list(input_groups) if hasattr(input_groups, "__iter__") else input_groups
    try:
        labels = np.asarray(values)
    except ValueError:  # ragged, e.g. tuples beside ints
        labels = None
    if labels is None or (labels.ndim == 1 and labels.dtype.kind in "USO"
                          and (labels.dtype.kind == "O"
                               or len({isinstance(v, str) for v in values}) > 1)):
        labels = np.empty(len(values), dtype=object)
        labels[:] = values
    return labels


def _labels_by_equality(labels):
    """Group ids of ``labels`` in order of first appearance (labels need not be sortable)."""
    index = {}
    for position, label in enumerate(labels):
        try:
            index.setdefault(label, len(index))
        except TypeError:  # unhashable
            raise TypeError(
                f"input_groups labels must be ints or strings, got {label!r} of type "
                f"{type(label).__name__} at position {position}."
            ) from None
    return np.array([index[label] for label in labels], dtype=np.int64)


def input_group_pointers(input_groups, n_features):
    """Turn per-input group labels into (order, ptr) for the dictionary kernel.

    ``order[ptr[h]:ptr[h + 1]]`` are the inputs of the h-th input group. ``None`` means
    every input is its own group (an L1 penalty on the atoms), signalled by an empty
    ``order`` so the kernel takes its element-wise fast path.
    """
    if input_groups is None:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    labels = _group_labels(input_groups)
    if labels.ndim != 1 or labels.shape[0] != n_features:
        raise ValueError(
            f"input_groups must be a 1-d array of length n_features={n_features} giving the "
            f"group label of each input, got shape {labels.shape}."
        )
    if labels.dtype.kind == "f" and not np.all(np.isfinite(labels)):
        # np.unique would make NaN one more group: a missing label is a bug upstream
        raise ValueError("input_groups must hold finite labels (ints or strings), got NaN or inf.")
    if labels.dtype.kind == "O":
        for position, label in enumerate(labels):
            if label is None or (isinstance(label, float) and not np.isfinite(label)):
                raise ValueError(  # a missing label is a bug upstream
                    f"input_groups must hold a label for every input, got {label!r} at "
                    f"position {position}."
                )
        try:
            _, inverse = np.unique(labels, return_inverse=True)
        except TypeError:  # labels that cannot be sorted (1 and "a"): grouped by equality
            inverse = _labels_by_equality(labels)
    else:
        _, inverse = np.unique(labels, return_inverse=True)
    order = np.argsort(inverse, kind="stable").astype(np.int64)
    counts = np.bincount(inverse)
    ptr = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return order, ptr
