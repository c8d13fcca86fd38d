"""Records and metrics of a learned network structure.

Everything here is a pure function on arrays: a layer is described by its
dictionary ``components`` (one row of input weights per unit) and its
``group_size`` (contiguous units pooled together).  The estimators build their
``structure_`` attribute and their summary from these functions
(:func:`describe_layers`, :func:`stack_summary`); nothing here imports them (fitted
layers and learners are read through their attributes).

Conventions
-----------
Images are flattened in C order with the channels last, as in
:func:`sklearn.feature_extraction.image.extract_patches_2d` and
:func:`sklearn.datasets.load_sample_images`: ``image_shape`` is ``(height,
width)`` for grayscale images or ``(height, width, channels)``, and feature
``(i * width + j) * channels + c`` is channel ``c`` of pixel ``(i, j)``.

A fixed pixel shuffle is described by ``permutation``, an array of
``n_features`` indices such that the shuffled data are ``X[:, permutation]``.
:func:`unpermute_features` maps weights learned on shuffled data back to the
original pixel order, which is what every spatial metric needs.
"""

from dataclasses import dataclass, field
from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state

from ._groups import pool_codes
from ._param_validation import StrOptions, int_in, validate_params

__all__ = [
    "LayerStructure",
    "describe_layers",
    "describe_structure",
    "fan_in_stats",
    "locality_ratio",
    "pooling_invariance",
    "shift_images",
    "spatial_spread",
    "stack_summary",
    "trace_receptive_fields",
    "unpermute_features",
]


# --------------------------------------------------------------------------- #
# validation helpers
# --------------------------------------------------------------------------- #
def _check_2d(array, name):
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2D array (n_units, n_inputs); got shape {array.shape}."
        )
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric or boolean; got dtype {array.dtype}.")
    return array


def _check_image_shape(image_shape, n_features=None):
    """Return ``(height, width, channels)`` and check it matches ``n_features``."""
    try:
        shape = tuple(int(s) for s in image_shape)
    except TypeError as exc:
        raise ValueError(
            f"image_shape must be (height, width) or (height, width, channels); "
            f"got {image_shape!r}."
        ) from exc
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            "image_shape must be (height, width) or (height, width, channels) with "
            f"positive sizes; got {image_shape!r}."
        )
    if n_features is not None and int(np.prod(shape)) != n_features:
        raise ValueError(
            f"image_shape {tuple(image_shape)} has {int(np.prod(shape))} features but "
            f"the data have {n_features}."
        )
    return shape


def _check_group_size(group_size, n_units, name="group_size"):
    if not isinstance(group_size, Integral) or isinstance(group_size, bool):
        raise TypeError(f"{name} must be an integer; got {group_size!r}.")
    if group_size < 1 or n_units % group_size:
        raise ValueError(
            f"{name}={group_size} must be a positive divisor of the number of "
            f"units ({n_units})."
        )
    return int(group_size)


def unpermute_features(weights, permutation):
    """Map weights learned on shuffled features back to the original order.

    Parameters
    ----------
    weights : array-like of shape (n_units, n_features)
        Weights (or a mask) on the shuffled features ``X[:, permutation]``.
    permutation : array-like of shape (n_features,)
        The fixed shuffle applied to the data: the model saw
        ``X[:, permutation]``.

    Returns
    -------
    unshuffled : ndarray of shape (n_units, n_features)
        ``unshuffled[:, permutation] = weights``, so column ``f`` of the result
        is the weight on original feature ``f``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.structure import unpermute_features
    >>> X = np.array([[10, 20, 30]])
    >>> perm = np.array([2, 0, 1])
    >>> unpermute_features(X[:, perm], perm)
    array([[10, 20, 30]])
    """
    weights = np.asarray(weights)
    if weights.ndim == 1:
        weights = weights[np.newaxis]
    permutation = np.asarray(permutation)
    n_features = weights.shape[1]
    if (
        permutation.ndim != 1
        or permutation.shape[0] != n_features
        or permutation.dtype.kind not in "iu"
        or not np.array_equal(np.sort(permutation), np.arange(n_features))
    ):
        raise ValueError(
            f"permutation must be a permutation of range({n_features}) (the number of "
            "features of the weights)."
        )
    unshuffled = np.empty_like(weights)
    unshuffled[:, permutation] = weights
    return unshuffled


# --------------------------------------------------------------------------- #
# fan-in
# --------------------------------------------------------------------------- #
def fan_in_stats(mask):
    """Fan-in statistics of a connectivity mask.

    Parameters
    ----------
    mask : array-like of shape (n_units, n_inputs)
        Connectivity mask; any non-zero entry (e.g. of a dictionary) counts as a
        connection.

    Returns
    -------
    stats : dict
        ``mean``, ``median``, ``std`` (population, ``ddof=0``), ``min`` and
        ``max`` of the number of inputs per unit, ``frac_dead_units`` (fraction
        of units without any connection) and ``density`` (fraction of non-zero
        entries of the mask).  Plain Python numbers.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.structure import fan_in_stats
    >>> mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=bool)
    >>> stats = fan_in_stats(mask)
    >>> stats["mean"], stats["max"], stats["frac_dead_units"], stats["density"]
    (2.0, 4, 0.3333333333333333, 0.5)
    """
    mask = _check_2d(mask, "mask") != 0
    n_units, n_inputs = mask.shape
    if n_units == 0 or n_inputs == 0:
        raise ValueError(f"mask must have at least one unit and one input; got {mask.shape}.")
    fan_in = mask.sum(axis=1)
    return {
        "mean": float(fan_in.mean()),
        "median": float(np.median(fan_in)),
        "min": int(fan_in.min()),
        "max": int(fan_in.max()),
        "std": float(fan_in.std()),
        "frac_dead_units": float(np.mean(fan_in == 0)),
        "density": float(mask.mean()),
    }


# --------------------------------------------------------------------------- #
# receptive-field locality
# --------------------------------------------------------------------------- #
def _pixel_mass(weights, image_shape):
    """Connection mass per pixel, ``sum_c |w|``, shape (n_units, h * w)."""
    weights = _check_2d(weights, "weights")
    h, w, c = _check_image_shape(image_shape, weights.shape[1])
    mass = np.abs(weights.astype(np.float64, copy=False))
    if c > 1:
        mass = mass.reshape(weights.shape[0], h * w, c).sum(axis=2)
    return mass, h, w


def _pixel_coordinates(h, w):
    # Centred coordinates keep E[r^2] - E[r]^2 free of cancellation on big grids.
    rows = np.repeat(np.arange(h, dtype=np.float64) - (h - 1) / 2, w)
    cols = np.tile(np.arange(w, dtype=np.float64) - (w - 1) / 2, h)
    return rows, cols


def _weighted_spread(mass, rows, cols):
    total = mass.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_r = mass @ rows / total
        mean_c = mass @ cols / total
        mean_sq = mass @ (rows**2 + cols**2) / total
    spread = np.maximum(mean_sq - mean_r**2 - mean_c**2, 0.0)
    spread[~(total > 0)] = np.nan
    return spread


def spatial_spread(weights, image_shape, *, permutation=None):
    """Spatial spread of each unit's connection mass on the pixel grid.

    The spread of unit ``k`` is the mass-weighted mean squared distance of its
    connections from their centre of mass, with mass ``m_p = sum_c |w_{k,p,c}|``
    on pixel ``p`` at grid position ``r_p`` (in pixels)::

        mu_k = sum_p m_p r_p / sum_p m_p
        spread_k = sum_p m_p ||r_p - mu_k||^2 / sum_p m_p

    Parameters
    ----------
    weights : array-like of shape (n_units, n_features)
        Input weights (or a boolean mask) of the units on the flattened images.
    image_shape : tuple of int
        ``(height, width)`` or ``(height, width, channels)``, channels last.
    permutation : array-like of shape (n_features,), default=None
        Fixed feature shuffle the weights were learned under (see
        :func:`unpermute_features`); undone before measuring.

    Returns
    -------
    spread : ndarray of shape (n_units,)
        Squared pixels; NaN for units without connections.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.structure import spatial_spread
    >>> w = np.zeros((1, 9))
    >>> w[0, [3, 5]] = 1.0        # pixels (1, 0) and (1, 2) on a 3x3 grid
    >>> spatial_spread(w, (3, 3))
    array([1.])
    """
    if permutation is not None:
        weights = unpermute_features(weights, permutation)
    mass, h, w = _pixel_mass(weights, image_shape)
    rows, cols = _pixel_coordinates(h, w)
    return _weighted_spread(mass, rows, cols)


def _random_subset_spread(fan_ins, rows, cols, n_random, rng):
    """Mean spread of ``n_random`` equal-mass uniform random pixel subsets per fan-in."""
    n_pixels = rows.shape[0]
    # The first k pixels of a uniformly random ordering are a uniform k-subset, so
    # one ordering per draw serves every fan-in at once through cumulative sums.
    # (Estimates for different fan-ins are correlated, each is still unbiased.)
    order = np.argsort(rng.random((n_random, n_pixels)), axis=1)
    k = fan_ins.astype(np.float64)
    sum_r = np.cumsum(rows[order], axis=1)[:, fan_ins - 1]
    sum_c = np.cumsum(cols[order], axis=1)[:, fan_ins - 1]
    sum_sq = np.cumsum((rows**2 + cols**2)[order], axis=1)[:, fan_ins - 1]
    spread = np.maximum(sum_sq / k - (sum_r / k) ** 2 - (sum_c / k) ** 2, 0.0)
    return spread.mean(axis=0)


@validate_params(
    {
        "weights": ["array-like"],
        "image_shape": ["array-like"],
        "random_state": ["random_state"],
        "n_random": [int_in(1)],
        "permutation": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def locality_ratio(weights, image_shape, *, random_state=None, n_random=50, permutation=None):
    """Receptive-field locality: spread of each unit against random connectivity.

    For every unit, the :func:`spatial_spread` of its connection mass is divided
    by the mean spread of ``n_random`` uniformly random pixel subsets of the same
    fan-in (number of pixels with a non-zero weight in any channel), each with
    equal mass.  A ratio well below 1 means the unit connects to a compact
    patch of the image; about 1 means its connections are scattered like a
    random mask.

    Parameters
    ----------
    weights : array-like of shape (n_units, n_features)
        Input weights (or a boolean mask) on the flattened images; for deeper
        layers pass receptive fields traced back to the pixels with
        :func:`trace_receptive_fields`.
    image_shape : tuple of int
        ``(height, width)`` or ``(height, width, channels)``, channels last.
    random_state : int, RandomState instance or None, default=None
        Seeds the random masks; pass an int for reproducible results.
    n_random : int, default=50
        Number of random masks per fan-in value.
    permutation : array-like of shape (n_features,), default=None
        Fixed feature shuffle the weights were learned under (see
        :func:`unpermute_features`); undone before measuring.

    Returns
    -------
    ratios : ndarray of shape (n_units,)
        Per-unit ratio; NaN for units with fewer than two connected pixels
        (no connection: nothing to measure; one pixel: every mask of fan-in one
        has zero spread, so the comparison carries no information).
    locality : float
        Median ratio over the units with a defined ratio (NaN if none).

    Notes
    -----
    Random masks of fan-in ``k`` among ``N`` pixels have expected spread
    ``(k - 1) / k * N / (N - 1) * s2``, where ``s2`` is the variance of the pixel
    positions over the grid; the Monte Carlo average converges to it.  The
    random masks depend only on the fan-in: each draw is one random ordering of
    the pixels whose first ``k`` pixels form the random mask of fan-in ``k``, so
    all units of the same fan-in share the same ``n_random`` masks.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.structure import locality_ratio
    >>> patch = np.zeros((8, 8))
    >>> patch[2:5, 3:6] = 1.0                                # a local 3x3 unit
    >>> rng = np.random.RandomState(0)
    >>> scattered = np.zeros(64)
    >>> scattered[rng.choice(64, 9, replace=False)] = 1.0    # a random unit
    >>> ratios, locality = locality_ratio(
    ...     np.vstack([patch.ravel(), scattered]), (8, 8), random_state=0)
    >>> bool(ratios[0] < 0.3), bool(ratios[1] > 0.5)
    (True, True)
    """
    if permutation is not None:
        weights = unpermute_features(weights, permutation)
    mass, h, w = _pixel_mass(weights, image_shape)
    rows, cols = _pixel_coordinates(h, w)
    spread = _weighted_spread(mass, rows, cols)
    fan_in = np.count_nonzero(mass, axis=1)

    rng = check_random_state(random_state)
    ratios = np.full(mass.shape[0], np.nan)
    live = fan_in >= 2
    if np.any(live):
        distinct, inverse = np.unique(fan_in[live], return_inverse=True)
        baseline = _random_subset_spread(distinct, rows, cols, int(n_random), rng)
        ratios[live] = spread[live] / baseline[inverse]
    locality = float(np.median(ratios[live])) if np.any(live) else float("nan")
    return ratios, locality


# --------------------------------------------------------------------------- #
# tracing receptive fields through the layers
# --------------------------------------------------------------------------- #
def trace_receptive_fields(layers, *, pooled=False, return_all=False):
    """Trace the receptive fields of stacked layers back to the input pixels.

    Input ``j`` of layer ``l + 1`` is the pooled output of group ``j`` of layer
    ``l``, i.e. of units ``j * gs_l, ..., (j + 1) * gs_l - 1``.  Receptive
    fields are propagated with absolute weights::

        R_1 = |W_1|
        R_{l+1} = |W_{l+1}| @ G_l,   G_l[j] = sum of R_l over the units of group j

    so ``R_l[k, p]`` is the total absolute weight of all paths from pixel ``p``
    to unit ``k`` (a linearisation of the pooled network that ignores signs,
    which would cancel arbitrarily through the non-linear pooling).  The
    traced mask is reachability through the connectivity masks, ``W != 0``.

    Parameters
    ----------
    layers : sequence of (components, group_size)
        From the bottom layer to the top one: ``components`` of shape
        ``(n_units_l, n_inputs_l)`` and the layer's ``group_size``, with
        ``n_inputs_{l+1} == n_units_l // group_size_l``.  Use ``group_size=1``
        for a layer whose outputs are the raw (unpooled) codes.
    pooled : bool, default=False
        If True, return the fields of the groups (pooled outputs), i.e. ``G_l``,
        instead of those of the units.
    return_all : bool, default=False
        If True, return the fields of every layer instead of the top one only.

    Returns
    -------
    fields : ndarray of shape (n_units_top, n_inputs_1), or list of them
        Non-negative effective receptive fields on the input pixels (rows are
        groups when ``pooled=True``).
    mask : ndarray of bool, same shape as ``fields``, or list of them
        Whether a path of connections joins the unit (or group) to the pixel.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.structure import trace_receptive_fields
    >>> W1 = np.array([[1., 0., 0., 0.],     # group 0: units 0-1 see pixels 0, 1
    ...                [0., 1., 0., 0.],
    ...                [0., 0., 1., 0.],     # group 1: units 2-3 see pixels 2, 3
    ...                [0., 0., 0., -2.]])
    >>> W2 = np.array([[0., 1.]])            # top unit reads group 1 only
    >>> fields, mask = trace_receptive_fields([(W1, 2), (W2, 1)])
    >>> fields
    array([[0., 0., 1., 2.]])
    >>> mask
    array([[False, False,  True,  True]])
    """
    layers = list(layers)
    if not layers:
        raise ValueError("layers must contain at least one (components, group_size) pair.")
    all_fields, all_masks = [], []
    group_fields = group_mask = None
    for depth, layer in enumerate(layers, start=1):
        try:
            components, group_size = layer
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"layer {depth} must be a (components, group_size) pair."
            ) from exc
        components = _check_2d(components, f"components of layer {depth}")
        n_units, n_inputs = components.shape
        group_size = _check_group_size(group_size, n_units, f"group_size of layer {depth}")
        weights = np.abs(components.astype(np.float64, copy=False))
        connected = components != 0
        if group_fields is None:
            fields, mask = weights, connected
        else:
            if n_inputs != group_fields.shape[0]:
                raise ValueError(
                    f"layer {depth} has {n_inputs} inputs but layer {depth - 1} has "
                    f"{group_fields.shape[0]} groups (pooled outputs)."
                )
            fields = weights @ group_fields
            # Counting paths with a float product is exact enough to test > 0.
            mask = (connected.astype(np.float64) @ group_mask.astype(np.float64)) > 0
        n_groups = n_units // group_size
        group_fields = fields.reshape(n_groups, group_size, -1).sum(axis=1)
        group_mask = mask.reshape(n_groups, group_size, -1).any(axis=1)
        if pooled:
            all_fields.append(group_fields)
            all_masks.append(group_mask)
        else:
            all_fields.append(fields)
            all_masks.append(mask)
    if return_all:
        return all_fields, all_masks
    return all_fields[-1], all_masks[-1]


# --------------------------------------------------------------------------- #
# pooling invariance
# --------------------------------------------------------------------------- #
@validate_params(
    {
        "X": ["array-like"],
        "image_shape": ["array-like"],
        "shift": "no_validation",  # a pair of ints, checked below
        "mode": [StrOptions({"wrap", "constant"})],
    },
    prefer_skip_nested_validation=True,
)
def shift_images(X, image_shape, shift, *, mode="wrap"):
    """Translate flattened images by a whole number of pixels.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Flattened images (C order, channels last).
    image_shape : tuple of int
        ``(height, width)`` or ``(height, width, channels)``.
    shift : tuple of (int, int)
        ``(down, right)`` displacement in pixels; negative values move up/left.
    mode : {"wrap", "constant"}, default="wrap"
        ``"wrap"`` rolls the image (:func:`numpy.roll`): a pure rearrangement of
        the pixels that keeps every pixel value, so only their positions change.
        ``"constant"`` shifts in zeros and drops the pixels pushed out.

    Returns
    -------
    X_shifted : ndarray of shape (n_samples, n_features)
        The shifted images, flattened like ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.structure import shift_images
    >>> X = np.arange(6).reshape(1, 6)          # one 2x3 image
    >>> shift_images(X, (2, 3), (0, 1))
    array([[2, 0, 1, 5, 3, 4]])
    >>> shift_images(X, (2, 3), (0, 1), mode="constant")
    array([[0, 0, 1, 0, 3, 4]])
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2D (n_samples, n_features); got shape {X.shape}.")
    h, w, c = _check_image_shape(image_shape, X.shape[1])
    try:
        dy, dx = (int(s) for s in shift)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"shift must be a pair of integers; got {shift!r}.") from exc
    images = X.reshape(X.shape[0], h, w, c)
    if mode == "wrap":
        shifted = np.roll(images, (dy, dx), axis=(1, 2))
    else:  # "constant"
        shifted = np.zeros_like(images)
        if abs(dy) < h and abs(dx) < w:
            src_r = slice(max(-dy, 0), h - max(dy, 0))
            dst_r = slice(max(dy, 0), h - max(-dy, 0))
            src_c = slice(max(-dx, 0), w - max(dx, 0))
            dst_c = slice(max(dx, 0), w - max(-dx, 0))
            shifted[:, dst_r, dst_c] = images[:, src_r, src_c]
    return shifted.reshape(X.shape)


def _as_output(Z, n_samples, name):
    Z = np.asarray(Z, dtype=np.float64)
    if Z.shape[:1] != (n_samples,):
        n_rows = Z.shape[0] if Z.ndim else "a scalar, no"
        raise ValueError(f"{name} returned {n_rows} rows for {n_samples} samples.")
    return Z.reshape(n_samples, -1)


def _relative_change(transform, X, X_shifted, reference, name):
    changed = _as_output(transform(X_shifted), X.shape[0], name)
    norm = np.linalg.norm(reference)
    if norm == 0:
        return np.nan
    return float(np.linalg.norm(changed - reference) / norm)


def pooling_invariance(
    transform_pooled,
    transform_codes,
    X,
    image_shape,
    *,
    shifts=((0, 1), (1, 0), (0, -1), (-1, 0)),
    mode="wrap",
    permutation=None,
):
    """How much pooling reduces the change of a layer's output under small shifts.

    Each image is translated by every shift in ``shifts`` (one pixel by default)
    and the relative change of an output ``f`` is measured over the sample::

        change(f) = ||f(shift X) - f(X)||_F / ||f(X)||_F

    then averaged over the shifts.  This is the energy-weighted mean of the
    per-sample relative changes, which stays finite when some samples have
    (almost) silent outputs.  It is computed for the pooled outputs and for
    the unpooled codes of the same layer.

    Parameters
    ----------
    transform_pooled : callable
        Maps ``X`` (n_samples, n_features) to the pooled outputs, e.g. the
        layer's ``transform``.
    transform_codes : callable
        Maps ``X`` to the unpooled codes, e.g. the layer's ``encode``.
    X : array-like of shape (n_samples, n_features)
        Flattened images (C order, channels last), in the feature order the
        transforms expect.
    image_shape : tuple of int
        ``(height, width)`` or ``(height, width, channels)``.
    shifts : sequence of (int, int), default=((0, 1), (1, 0), (0, -1), (-1, 0))
        ``(down, right)`` displacements, see :func:`shift_images`.
    mode : {"wrap", "constant"}, default="wrap"
        Border handling of the shift, see :func:`shift_images`.  The default
        rolls the image so that no pixel content is lost or invented.
    permutation : array-like of shape (n_features,), default=None
        If the transforms work on shuffled pixels ``X_orig[:, permutation]``,
        ``X`` is in that shuffled order; the shift is then applied on the
        original pixel grid and the result shuffled again.

    Returns
    -------
    invariance : dict
        ``pooled_change`` and ``codes_change`` (mean relative changes),
        ``score = 1 - pooled_change / codes_change`` (> 0 means pooling brings
        invariance, 1 means perfectly invariant pooled outputs, NaN if the
        codes never change), and the per-shift arrays
        ``pooled_change_per_shift`` and ``codes_change_per_shift``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.structure import pooling_invariance
    >>> X = np.random.RandomState(0).rand(20, 36)
    >>> total = lambda X: np.abs(X).sum(axis=1, keepdims=True)   # shift invariant
    >>> identity = lambda X: X                                  # not at all
    >>> result = pooling_invariance(total, identity, X, (6, 6))
    >>> round(result["score"], 6)
    1.0
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2D (n_samples, n_features); got shape {X.shape}.")
    _check_image_shape(image_shape, X.shape[1])
    shifts = [tuple(s) for s in shifts]
    if not shifts:
        raise ValueError("shifts must contain at least one (down, right) pair.")
    if permutation is not None:
        X_orig = unpermute_features(X, permutation)

    pooled_ref = _as_output(transform_pooled(X), X.shape[0], "transform_pooled")
    codes_ref = _as_output(transform_codes(X), X.shape[0], "transform_codes")
    pooled_changes, codes_changes = [], []
    for shift in shifts:
        if permutation is None:
            X_shifted = shift_images(X, image_shape, shift, mode=mode)
        else:
            X_shifted = shift_images(X_orig, image_shape, shift, mode=mode)[:, permutation]
        pooled_changes.append(
            _relative_change(transform_pooled, X, X_shifted, pooled_ref, "transform_pooled")
        )
        codes_changes.append(
            _relative_change(transform_codes, X, X_shifted, codes_ref, "transform_codes")
        )
    pooled_change = float(np.mean(pooled_changes))
    codes_change = float(np.mean(codes_changes))
    score = 1.0 - pooled_change / codes_change if codes_change > 0 else float("nan")
    return {
        "pooled_change": pooled_change,
        "codes_change": codes_change,
        "score": float(score),
        "pooled_change_per_shift": np.asarray(pooled_changes),
        "codes_change_per_shift": np.asarray(codes_changes),
    }


# --------------------------------------------------------------------------- #
# records
# --------------------------------------------------------------------------- #
def _fmt(value, spec):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return format(value, spec)


@dataclass(frozen=True, eq=False)
class LayerStructure:
    """The learned structure of one layer.

    Build it with :meth:`from_components`; the record is immutable.

    Attributes
    ----------
    n_inputs : int
        Number of inputs of the layer.
    n_units : int
        Number of units (dictionary atoms).
    n_groups : int
        Number of pooling groups, ``n_units // group_size``.
    group_size : int
        Units per group; group ``g`` is units ``g * group_size`` to
        ``(g + 1) * group_size - 1``.
    connectivity : ndarray of bool of shape (n_units, n_inputs)
        Which inputs each unit is connected to.
    fan_in : dict
        :func:`fan_in_stats` of ``connectivity``.
    locality : float or None
        Median :func:`locality_ratio` of the receptive fields (< 1: local);
        None when the inputs are not images.
    invariance : dict or None
        :func:`pooling_invariance` of the layer, if measured.
    receptive_fields : ndarray of shape (n_units, n_pixel_features) or None
        The units' receptive fields on the input pixels: the weights for the
        first layer, :func:`trace_receptive_fields` for deeper ones.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.structure import LayerStructure
    >>> W = np.kron(np.eye(4), np.ones((2, 4)))      # 8 units on 16 inputs
    >>> layer = LayerStructure.from_components(W, group_size=2)
    >>> layer.n_groups, layer.fan_in["mean"]
    (4, 4.0)
    >>> print(layer.summary())
    16 inputs -> 8 units in 4 groups of 2 | fan-in mean 4.0, median 4, range 4-4, dead 0.0% | density 25.0%
    """

    n_inputs: int
    n_units: int
    n_groups: int
    group_size: int
    connectivity: np.ndarray = field(repr=False)
    fan_in: dict
    locality: float | None = None
    invariance: dict | None = None
    receptive_fields: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_components(
        cls,
        components,
        group_size=1,
        *,
        image_shape=None,
        receptive_fields=None,
        invariance=None,
        random_state=None,
        n_random=50,
    ):
        """Describe a layer from its dictionary.

        Parameters
        ----------
        components : array-like of shape (n_units, n_inputs)
            The layer's input weights; non-zero entries are its connectivity.
        group_size : int, default=1
            Units per pooling group.
        image_shape : tuple of int, default=None
            Shape of the input images of the network.  When given, the
            locality of ``receptive_fields`` is measured.
        receptive_fields : array-like of shape (n_units, n_pixel_features), default=None
            The units' fields on the input pixels; defaults to ``components``
            when the layer reads the pixels directly (``n_inputs`` equals the
            size of ``image_shape``).
        invariance : dict, default=None
            Result of :func:`pooling_invariance`, stored as is.
        random_state : int, RandomState instance or None, default=None
            Seeds the random masks of :func:`locality_ratio`.
        n_random : int, default=50
            Random masks per fan-in for :func:`locality_ratio`.

        Returns
        -------
        structure : LayerStructure
        """
        components = _check_2d(components, "components")
        n_units, n_inputs = components.shape
        group_size = _check_group_size(group_size, n_units)
        connectivity = components != 0
        locality = None
        if receptive_fields is not None:
            receptive_fields = _check_2d(receptive_fields, "receptive_fields")
            if receptive_fields.shape[0] != n_units:
                raise ValueError(
                    f"receptive_fields has {receptive_fields.shape[0]} rows for {n_units} units."
                )
        if image_shape is not None:
            n_pixel_features = int(np.prod(_check_image_shape(image_shape)))
            if receptive_fields is None and n_inputs == n_pixel_features:
                receptive_fields = components
            if receptive_fields is not None:
                _, locality = locality_ratio(
                    receptive_fields, image_shape, random_state=random_state, n_random=n_random
                )
        return cls(
            n_inputs=n_inputs,
            n_units=n_units,
            n_groups=n_units // group_size,
            group_size=group_size,
            connectivity=connectivity,
            fan_in=fan_in_stats(connectivity),
            locality=locality,
            invariance=None if invariance is None else dict(invariance),
            receptive_fields=receptive_fields,
        )

    def summary(self):
        """One-line description of the layer.

        Returns
        -------
        summary : str
        """
        fan = self.fan_in
        parts = [
            f"{self.n_inputs} inputs -> {self.n_units} units in {self.n_groups} groups "
            f"of {self.group_size}",
            f"fan-in mean {fan['mean']:.1f}, median {fan['median']:g}, "
            f"range {fan['min']}-{fan['max']}, dead {100 * fan['frac_dead_units']:.1f}%",
            f"density {100 * fan['density']:.1f}%",
        ]
        if self.locality is not None:
            parts.append(f"locality {_fmt(self.locality, '.3f')}")
        if self.invariance is not None:
            parts.append(f"invariance {_fmt(self.invariance.get('score'), '.3f')}")
        return " | ".join(parts)

    def to_dict(self):
        """The record as a plain dict (arrays included, not copied).

        Returns
        -------
        record : dict
        """
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def describe_structure(structures, entropies=None, *, unit="bits"):
    """Readable table of a stack of layers.

    Parameters
    ----------
    structures : sequence of LayerStructure
        The layers from bottom (depth 1) to top.
    entropies : array-like, default=None
        Output entropies.  With ``len(structures) + 1`` values (or more), the
        first is the entropy of the input (depth 0) and value ``l`` that of
        layer ``l``; values beyond the last layer (candidate layers tried but
        not kept by the depth rule) are listed as "not kept".  With
        ``len(structures)`` values, they are the layers' entropies.
    unit : str, default="bits"
        Unit of the entropies, for the header.

    Returns
    -------
    table : str
        One row per depth: inputs, units, groups (count x size), mean fan-in,
        connection density, entropy, change of entropy from the previous depth ("change"),
        locality and pooling-invariance score.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.structure import LayerStructure, describe_structure
    >>> layers = [LayerStructure.from_components(np.eye(4), 2),
    ...           LayerStructure.from_components(np.ones((2, 2)), 1)]
    >>> print(describe_structure(layers, [2.0, 3.5, 3.75]))
    depth  layer    inputs  units  groups  fan-in  density  entropy (bits)  change  locality  invariance
    0      input         4      -       -       -        -           2.000       -         -           -
    1      layer 1       4      4     2x2     1.0    0.250           3.500  +1.500         -           -
    2      layer 2       2      2     2x1     2.0    1.000           3.750  +0.250         -           -
    """
    structures = list(structures)
    n_layers = len(structures)
    if entropies is None:
        entropies = [None] * (n_layers + 1)
    else:
        entropies = [float(e) for e in np.asarray(entropies, dtype=float).ravel()]
        if len(entropies) == n_layers:
            entropies = [None] + entropies
        elif len(entropies) < n_layers:
            raise ValueError(
                f"entropies has {len(entropies)} values for {n_layers} layers; expected "
                f"{n_layers} or {n_layers + 1} (input first)."
            )

    header = ["depth", "layer", "inputs", "units", "groups", "fan-in", "density",
              f"entropy ({unit})", "change", "locality", "invariance"]
    rows = []
    first_inputs = structures[0].n_inputs if structures else None
    for depth, entropy in enumerate(entropies):
        previous = entropies[depth - 1] if depth > 0 else None
        gain = None if entropy is None or previous is None else entropy - previous
        row = [str(depth)]
        if depth == 0:
            row += ["input", _fmt(first_inputs, "d")] + ["-"] * 4
        elif depth <= n_layers:
            s = structures[depth - 1]
            row += [
                f"layer {depth}", str(s.n_inputs), str(s.n_units),
                f"{s.n_groups}x{s.group_size}", f"{s.fan_in['mean']:.1f}",
                f"{s.fan_in['density']:.3f}",
            ]
        else:
            row += ["not kept"] + ["-"] * 5
        row.append(_fmt(entropy, ".3f"))
        row.append(_fmt(gain, "+.3f"))
        if 1 <= depth <= n_layers:
            s = structures[depth - 1]
            invariance = None if s.invariance is None else s.invariance.get("score")
            row += [_fmt(s.locality, ".3f"), _fmt(invariance, ".3f")]
        else:
            row += ["-", "-"]
        rows.append(row)

    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    left = {0, 1}  # depth and layer name read better left-aligned

    def line(cells):
        out = [
            cell.ljust(width) if i in left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths))
        ]
        return "  ".join(out).rstrip()

    return "\n".join([line(header)] + [line(r) for r in rows])


# --------------------------------------------------------------------------- #
# a stack of fitted layers (DeepStructureLearner's structure_ and summary)
# --------------------------------------------------------------------------- #
# raw training images on which the pooling invariance of every layer is measured
INVARIANCE_SUBSAMPLE = 256


def _layer_invariance(X, depth, codes_of, group_size, pooling, image_shape):
    """pooling_invariance of layer ``depth`` on raw images ``X`` (codes computed once)."""
    cache = {}

    def codes(X_in):
        # pooling_invariance asks for the pooled outputs and the codes of the same
        # array in turn; code it once and pool the codes.
        key = id(X_in)
        if key not in cache:
            cache.clear()
            cache[key] = (X_in, codes_of(X_in, depth))
        return cache[key][1]

    def pooled(X_in):
        return pool_codes(codes(X_in), group_size, pooling)

    return pooling_invariance(pooled, codes, X, image_shape)


def describe_layers(layers, X, *, pooling, image_shape, codes_of, random_state):
    """One :class:`LayerStructure` per fitted layer of a stack, bottom first.

    Deeper layers get their receptive fields traced to the inputs of the first layer
    (:func:`trace_receptive_fields`); with ``image_shape`` and a pooling, every layer's
    pooling invariance is measured on ``INVARIANCE_SUBSAMPLE`` (256) rows of ``X``.

    Parameters
    ----------
    layers : sequence of fitted layers
        Each with ``components_`` and ``group_size`` (e.g. ``GroupSparseCodingLayer``).
    X : ndarray of shape (n_samples, n_features)
        Raw training inputs of the stack.
    pooling : {"l2", "max"} or None
        Pooling of the layers' groups.
    image_shape : tuple of int or None
        ``(height, width, channels)`` of the raw inputs.
    codes_of : callable
        ``codes_of(X_raw, depth)``: raw codes of layer ``depth`` (1-based) for raw inputs.
    random_state : RandomState
        Seeds the invariance subsample and the locality baselines.

    Returns
    -------
    structures : list of LayerStructure
        One record per layer, bottom first.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from sklearn_structlearn.structure import describe_layers
    >>> layers = [SimpleNamespace(components_=np.eye(4, 6), group_size=2),
    ...           SimpleNamespace(components_=np.ones((2, 2)), group_size=1)]
    >>> structures = describe_layers(layers, np.zeros((5, 6)), pooling="l2",
    ...                              image_shape=None, codes_of=None,
    ...                              random_state=np.random.RandomState(0))
    >>> [(s.n_inputs, s.n_units, s.n_groups) for s in structures]
    [(6, 4, 2), (2, 2, 2)]
    >>> structures[1].receptive_fields.shape  # layer 2 traced to the 6 inputs
    (2, 6)
    """
    rng = random_state
    tracing_sizes = [layer.group_size if pooling is not None else 1 for layer in layers]
    fields, _ = trace_receptive_fields(
        [(layer.components_, gs) for layer, gs in zip(layers, tracing_sizes)],
        return_all=True,
    )
    sample = None
    if image_shape is not None:
        rows = rng.choice(X.shape[0], size=min(X.shape[0], INVARIANCE_SUBSAMPLE),
                          replace=False)
        sample = X[np.sort(rows)]
    structures = []
    for depth, layer in enumerate(layers, start=1):
        invariance = None
        if sample is not None and pooling is not None:
            invariance = _layer_invariance(sample, depth, codes_of, layer.group_size,
                                           pooling, image_shape)
        structures.append(LayerStructure.from_components(
            layer.components_,
            layer.group_size,
            image_shape=image_shape,
            receptive_fields=None if depth == 1 else fields[depth - 1],
            invariance=invariance,
            random_state=rng.randint(np.iinfo(np.int32).max),
        ))
    return structures


def _shape_text(image_shape):
    """``28x28`` (channels shown only when there are several)."""
    shape = image_shape[:2] if len(image_shape) == 3 and image_shape[2] == 1 else image_shape
    return "x".join(map(str, shape))


def stack_summary(learner):
    """Readable description of a fitted stack (``DeepStructureLearner.summary``).

    Parameters
    ----------
    learner : fitted DeepStructureLearner or alike
        Read through its parameters (``max_depth``, ``preprocessing``,
        ``zca_epsilon``, ``depth_tol``) and fitted attributes (``n_layers_``,
        ``n_features_in_``, ``image_shape_``, ``stop_reason_``, ``entropy_gains_``,
        ``redundancies_``, ``layers_``, ``structure_``, ``candidate_entropies_``).

    Returns
    -------
    text : str
        Preprocessing, depth decision, penalties and the table of
        :func:`describe_structure`.

    Examples
    --------
    >>> from sklearn_structlearn import DeepStructureLearner
    >>> from sklearn_structlearn.datasets import load_digits_images
    >>> from sklearn_structlearn.structure import stack_summary
    >>> X, _ = load_digits_images()
    >>> learner = DeepStructureLearner(max_depth=1, n_components=16, max_iter=3,
    ...                                random_state=0).fit(X[:200])
    >>> print(stack_summary(learner).splitlines()[0])
    DeepStructureLearner: depth 1 of max_depth=1
    """
    pre = learner.preprocessing
    if pre == "zca":
        pre = f"zca (epsilon {learner.zca_epsilon:g} x mean eigenvalue)"
    lines = [
        f"{type(learner).__name__}: depth {learner.n_layers_} of max_depth={learner.max_depth}",
        f"inputs: {learner.n_features_in_} features"
        + (f" (images {_shape_text(learner.image_shape_)})" if learner.image_shape_ else "")
        + f", preprocessing: {pre}",
    ]
    if learner.stop_reason_ == "information":
        r2 = learner.decodable_variances_
        lines.append(
            f"stopped: layer {learner.n_layers_ + 1} raised the input variance a linear "
            f"read-out recovers by {r2[-1] - r2[-2]:+.3f} < depth_tol={learner.depth_tol:g}, "
            "not kept"
        )
    elif learner.stop_reason_ == "entropy_gain":
        lines.append(
            f"stopped: layer {learner.n_layers_ + 1} gained {learner.entropy_gains_[-1]:+.1%} "
            f"entropy < depth_tol={learner.depth_tol:.1%}, not kept"
        )
    elif learner.stop_reason_ == "redundancy":
        lines.append(
            f"stopped: layer {learner.n_layers_ + 1} lowered the redundancy by "
            f"{learner.redundancies_[-2] - learner.redundancies_[-1]:+.3f} < "
            f"depth_tol={learner.depth_tol:g}, not kept"
        )
    else:
        lines.append("stopped: max_depth reached")
    decodable = ", ".join(
        f"layer {d} {r2:.3f}" + ("" if d <= learner.n_layers_ else " (not kept)")
        for d, r2 in enumerate(getattr(learner, "decodable_variances_", []), start=1)
    )
    if decodable:
        lines.append(
            "information kept: fraction of the preprocessed input's variance a linear "
            f"read-out of each tried layer's outputs recovers on held-out rows: {decodable}")
    gains = ", ".join(
        f"layer {d} {g:+.1%}" + ("" if d <= learner.n_layers_ else " (not kept)")
        for d, g in enumerate(learner.entropy_gains_, start=1)
    )
    lines.append(
        "change of the summed binned marginal entropies (sparse outputs score low by "
        f"construction; not the depth rule unless depth_criterion='entropy'): {gains}")
    redundancy = ", ".join(f"{r:.3f}" for r in learner.redundancies_)
    lines.append(f"redundancy of the input and of each tried layer's outputs: {redundancy}")
    penalties = ", ".join(
        f"layer {d}: alpha {layer.alpha_:.3g}, connectivity_alpha "
        f"{layer.connectivity_alpha_:.3g}"
        for d, layer in enumerate(learner.layers_, start=1)
    )
    lines.append(f"penalties: {penalties}")
    lines.append(describe_structure(learner.structure_, learner.candidate_entropies_))
    return "\n".join(lines)
