"""Entropy and redundancy of a layer's outputs: what the efficient-coding depth rule measures.

For a deterministic layer the mutual information between its input and its output is
the entropy of the output. :class:`~sklearn_structlearn.DeepStructureLearner` records
:func:`~sklearn_structlearn.output_entropy` after every layer (``entropies_``) and, by default, keeps stacking
layers while each new one lowers the redundancy of the outputs
(:func:`output_redundancy`, ``depth_criterion="redundancy"``);
``depth_criterion="entropy"`` keeps stacking while the entropy still grows by more than
a tolerance (measured with :func:`~sklearn_structlearn.entropy_gain`).

Two estimators are provided:

``"binned"`` (default)
    Sum over units of the discrete entropy of each unit after discretisation into a
    dedicated *zero bin* plus ``n_bins`` equal-frequency bins over the non-zero
    values.  It is cheap, scale free, well defined for the sparse (often exactly
    zero) outputs of a sparse coding layer, and an upper bound on the joint entropy
    of the discretised outputs (exact for independent units).
``"knn"``
    Kozachenko-Leonenko k-nearest-neighbour estimate of the *joint* differential
    entropy.  It sees dependencies between units but is meant for continuous
    outputs of moderate dimension.

Any callable ``estimator(Z) -> float`` can be used instead.

The depth rule itself is redundancy-aware: summing the units' entropies counts twice
the bits that co-active units share, so :func:`total_correlation` estimates those
shared bits (Gaussian total correlation of the outputs) and :func:`output_redundancy`
expresses them as a fraction of the summed entropy.  A layer that merges co-active
units into fewer, independent outputs lowers the redundancy even though it cannot
raise the entropy (a deterministic layer never adds information).
"""

# Author: sklearn-structlearn developers
# License: BSD-3-Clause

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma, entr, gammaln
from scipy.stats import rankdata
from sklearn.utils import check_array, check_random_state

from ._param_validation import StrOptions, int_in, real_in, validate_params
from ._validation import check_numeric_dtype

__all__ = ["output_entropy", "entropy_gain", "total_correlation", "output_redundancy"]

_VALID_ESTIMATORS = ("binned", "knn")

# Relative size of the noise that breaks exact ties before the k-NN search.  It is far
# below any statistically meaningful scale of float64 data, yet survives rounding
# once the columns are centred (machine epsilon is ~2e-16).
_KNN_JITTER = 1e-10


@validate_params(
    {
        "Z": ["array-like"],
        "estimator": [StrOptions(set(_VALID_ESTIMATORS)), callable],
        "n_bins": [int_in(1)],
        "zero_tol": [real_in(0)],
        "bias_correction": ["boolean"],
        "k": [int_in(1)],
        "max_samples": [int_in(2), None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def output_entropy(
    Z,
    estimator="binned",
    *,
    n_bins=10,
    zero_tol=1e-10,
    bias_correction=True,
    k=3,
    max_samples=2000,
    random_state=None,
):
    """Estimate the entropy, in bits, of a layer's outputs.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_units)
        Outputs of a layer, one row per sample.  Must be finite; float32 input is
        accepted as is.

    estimator : {"binned", "knn"} or callable, default="binned"
        How to estimate the entropy:

        - ``"binned"``: sum over units of the discrete entropy of each unit.  The
          values of a unit are discretised into a *zero bin* (``|z| <= zero_tol``)
          plus ``n_bins`` equal-frequency (quantile) bins over its non-zero values.
          Quantile bins are assigned from the mid-ranks of the non-zero values, so
          tied values always share a bin: a unit that is constant (or always zero)
          contributes 0 bits, and a unit taking ``m <= n_bins`` distinct non-zero
          values with similar frequencies keeps them in ``m`` distinct bins.  By
          subadditivity of entropy the sum is an upper bound on the joint entropy
          of the discretised outputs, with equality for independent units.  For a
          continuous unit that is active with probability ``p`` the value is
          ``h2(p) + p * log2(n_bins)`` (``h2`` the binary entropy), i.e. the
          estimator rewards units that are used and penalises dead units; it is
          invariant to strictly increasing transforms of each unit's non-zero
          values.  Each unit contributes at most ``log2(n_bins + 1)`` bits.
        - ``"knn"``: Kozachenko-Leonenko estimate of the *joint* differential
          entropy of the rows, computed on a random subsample of at most
          ``max_samples`` rows::

              H = psi(n) - psi(k) + log(c_d) + d / n * sum_i log(eps_i)

          (nats, converted to bits), with ``eps_i`` the Euclidean distance from
          row ``i`` to its ``k``-th nearest neighbour and ``c_d = pi**(d/2) /
          Gamma(d/2 + 1)`` the volume of the Euclidean unit ball in ``d``
          dimensions.  Duplicate rows would give ``eps_i = 0`` and ``log 0``; to
          keep the estimate finite, the columns are centred and Gaussian noise of
          standard deviation ``1e-10`` times each column's standard deviation (or
          ``1e-10`` for a constant column) is added, drawn from ``random_state``.
          Outputs with many exactly repeated rows (e.g. very sparse codes) have a
          differential entropy of minus infinity; the jittered estimate is then
          very negative, and ``"binned"`` is the appropriate estimator.
        - callable: ``estimator(Z)`` is called on the validated array and must
          return a number, which is returned as a float.

    n_bins : int, default=10
        Number of equal-frequency bins over the non-zero values of each unit
        (``"binned"`` only).

    zero_tol : float, default=1e-10
        Values with ``|z| <= zero_tol`` fall in the zero bin (``"binned"`` only).
        The tolerance is absolute: the sparse outputs of a layer are exact zeros,
        and a small tolerance also catches numerically dead units.

    bias_correction : bool, default=True
        Apply the Miller-Madow correction ``(K - 1) / (2 n)`` nats to each unit's
        plug-in entropy, ``K`` being the number of occupied bins (``"binned"``
        only).  The plug-in estimator is biased low by about that amount, and the
        bias grows with the number of units, so the correction makes layers of
        different widths comparable.  A unit's corrected entropy is capped at
        ``log2(n_bins + 1)``, the largest entropy its discretisation can have.

    k : int, default=3
        Neighbour used for the distances of the ``"knn"`` estimator; must be
        smaller than the number of rows used.

    max_samples : int or None, default=2000
        Number of rows used by the ``"knn"`` estimator, drawn without replacement
        when ``Z`` has more rows.  ``None`` uses all rows.

    random_state : int, RandomState instance or None, default=None
        Controls the subsample and the tie-breaking noise of the ``"knn"``
        estimator.  Pass an int for reproducible results.

    Returns
    -------
    entropy : float
        Entropy estimate in bits (discrete entropy for ``"binned"``, differential
        entropy, which can be negative, for ``"knn"``).

    Raises
    ------
    ValueError
        If ``Z`` contains NaN or infinity, if ``estimator`` is an unknown string,
        if a parameter is out of range, or if ``"knn"`` gets fewer than 2 rows or
        ``k`` is not smaller than the number of rows used.

    See Also
    --------
    entropy_gain : Relative entropy gain used to stop adding layers.

    Notes
    -----
    Equal-frequency bins are uniformly filled by construction, so the plug-in
    binned entropy of a continuous unit without zeros is ``log2(n_bins)`` whatever
    its distribution (exactly so when ``n_samples`` is a multiple of ``n_bins``).
    ``"binned"`` therefore measures how much of that capacity the units use: how
    often they are active, how many are alive, and how many distinct values the
    discrete ones take.  ``"knn"`` measures
    dependencies between units and the spread of their values, but, like every
    differential entropy, changes by ``log2|c|`` when a unit is scaled by ``c``.
    This holds exactly for a single unit or a common scaling of all units; when
    one unit alone is scaled the neighbours change, and for very anisotropic
    clouds (one direction much thinner than the typical neighbour distance) the
    finite-sample bias of the estimator becomes large.

    References
    ----------
    L. F. Kozachenko and N. N. Leonenko, "Sample estimate of the entropy of a
    random vector", Problems of Information Transmission 23(2), 95-101, 1987.

    G. A. Miller, "Note on the bias of information estimates", in Information
    Theory in Psychology, 95-100, 1955.

    Examples
    --------
    Two independent units, each uniform over four values, carry 2 bits each:

    >>> import numpy as np
    >>> from sklearn_structlearn.entropy import output_entropy
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.integers(1, 5, size=(2000, 2)).astype(float)
    >>> print(round(output_entropy(Z), 2))
    4.0

    A unit that is active half of the time (1 bit) and, when active, spread over
    8 equal-frequency bins (3 bits) carries 1 + 0.5 * 3 = 2.5 bits:

    >>> gate = rng.random(4000) < 0.5
    >>> z = np.where(gate, rng.exponential(size=4000), 0.0)
    >>> print(round(output_entropy(z[:, None], n_bins=8), 1))
    2.5

    The k-NN estimator of a standard Gaussian, 0.5 * log2(2 pi e) = 2.05 bits:

    >>> X = rng.standard_normal((2000, 1))
    >>> print(round(output_entropy(X, "knn", random_state=0), 1))
    2.0
    """
    check_numeric_dtype(Z, "Z")
    Z = check_array(
        Z,
        dtype=[np.float64, np.float32],
        ensure_all_finite=True,
        input_name="Z",
    )

    if callable(estimator):
        value = estimator(Z)
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                "A callable estimator must return a number, got "
                f"{type(value).__name__}."
            ) from exc
    if estimator == "binned":
        per_unit = _binned_unit_entropies(
            Z, n_bins=int(n_bins), zero_tol=float(zero_tol),
            bias_correction=bool(bias_correction),
        )
        return float(per_unit.sum())
    return _knn_entropy(
        Z, k=int(k), max_samples=max_samples,
        random_state=check_random_state(random_state),
    )


@validate_params(
    {
        "h_before": [real_in(None, None, closed="neither")],
        "h_after": [real_in(None, None, closed="neither")],
        "eps": [real_in(0, None, closed="neither")],
    },
    prefer_skip_nested_validation=True,
)
def entropy_gain(h_before, h_after, *, eps=1e-12):
    """Relative gain of entropy from one layer to the next.

    ``(h_after - h_before) / max(|h_before|, eps)``: the depth rule keeps adding
    layers while this exceeds its tolerance.  Dividing by the absolute value keeps
    the sign of the gain equal to the sign of ``h_after - h_before`` even for the
    negative values a differential entropy (``"knn"``) can take, and ``eps``
    avoids a division by zero when ``h_before`` is 0 (e.g. a dead layer).

    Parameters
    ----------
    h_before : float
        Entropy before the new layer (of its input), in any unit.

    h_after : float
        Entropy after the new layer (of its output), in the same unit.

    eps : float, default=1e-12
        Floor on the denominator; must be positive.

    Returns
    -------
    gain : float
        Relative gain; positive when the entropy grew.

    Raises
    ------
    ValueError
        If an entropy is not finite or ``eps`` is not positive.

    Examples
    --------
    >>> from sklearn_structlearn.entropy import entropy_gain
    >>> print(round(entropy_gain(10.0, 12.0), 3))
    0.2
    >>> print(round(entropy_gain(-4.0, -3.0), 3))
    0.25
    """
    h_before, h_after = float(h_before), float(h_after)
    return (h_after - h_before) / max(abs(h_before), float(eps))


@validate_params(
    {"Z": ["array-like"], "shrinkage": [real_in(0, 1, closed="left")]},
    prefer_skip_nested_validation=True,
)
def total_correlation(Z, *, shrinkage=1e-3):
    """Gaussian estimate of the total correlation (shared information) of the outputs, in bits.

    The total correlation ``TC = sum_j H(Z_j) - H(Z)`` is the information the units
    share: zero for independent units, large when units switch on together.  It is
    estimated from the correlation matrix ``C`` of the non-constant units as the total
    correlation of a Gaussian with that correlation, ``-1/2 log2 det C``, minus its
    expected value for independent units, ``d (d - 1) / (4 n)`` nats (``d`` units,
    ``n`` samples), and floored at 0.  ``C`` is shrunk towards the identity by
    ``shrinkage`` so that duplicated units give a large but finite value.

    It only sees linear (correlation) dependence, which is the dependence left between
    the pooled, non-negative outputs of sparse coding layers: units that tend to be
    active together are positively correlated.  It is invariant to rescaling and
    shifting each unit.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_units)
        Outputs of a layer; must be finite.
    shrinkage : float, default=1e-3
        Weight of the identity in the shrunk correlation matrix, in ``[0, 1)``.

    Returns
    -------
    tc : float
        Total correlation estimate in bits (>= 0).

    See Also
    --------
    output_redundancy : the total correlation as a fraction of the summed entropies.

    Examples
    --------
    Two standard Gaussians with correlation 0.8 share ``-1/2 log2(1 - 0.64)`` bits:

    >>> import numpy as np
    >>> from sklearn_structlearn.entropy import total_correlation
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.multivariate_normal([0, 0], [[1, 0.8], [0.8, 1]], size=20000)
    >>> print(round(total_correlation(Z), 2), round(-0.5 * np.log2(1 - 0.64), 2))
    0.74 0.74
    """
    check_numeric_dtype(Z, "Z")
    Z = check_array(Z, dtype=[np.float64, np.float32], ensure_all_finite=True, input_name="Z")
    # Each unit divided by a power of two near its largest value: exact, so the
    # correlations are those of Z bitwise, and no square over- or underflows whatever the
    # scale of a unit (units at 1e+200 and 1e-200 side by side).
    Z, exponents = _unit_scaled(np.asarray(Z, dtype=np.float64))
    n_samples = Z.shape[0]
    centred = Z - Z.mean(axis=0)
    std = np.sqrt(np.einsum("ij,ij->j", centred, centred) / max(n_samples, 1))
    # constant (dead or always-equal) units share nothing with the others: a unit is live
    # when its spread exceeds 1e-12 of the largest (or 1e-300), compared in log2 units
    with np.errstate(divide="ignore"):
        log_std = np.log2(std) + exponents
    live = log_std > np.log2(1e-12) + max(float(log_std.max(initial=-np.inf)),
                                          np.log2(1e-300))
    d = int(live.sum())
    if d < 2 or n_samples < 2:
        return 0.0
    scaled = centred[:, live] / std[live]
    corr = scaled.T @ scaled / n_samples
    corr = (1.0 - shrinkage) * corr + shrinkage * np.eye(d)
    sign, logdet = np.linalg.slogdet(corr)
    if sign <= 0:  # only possible through rounding on a (nearly) singular matrix
        logdet = d * np.log(shrinkage) if shrinkage > 0 else -np.inf
    tc = -0.5 * logdet - d * (d - 1) / (4.0 * n_samples)
    return float(max(tc, 0.0) / np.log(2.0))


# not prefer_skip_nested_validation: the keyword arguments are checked by output_entropy
@validate_params({"Z": ["array-like"]}, prefer_skip_nested_validation=False)
def output_redundancy(Z, **kwargs):
    """Fraction of the summed unit entropies that the units share (0 = independent units).

    ``min(total_correlation(Z) / output_entropy(Z, "binned"), 1)``: the total
    correlation (:func:`total_correlation`) over the sum of the units' binned entropies
    (:func:`~sklearn_structlearn.output_entropy`), i.e. how much of what the units expose is said twice.
    Scale free and comparable between layers of different widths; 0 when the outputs
    carry no entropy.  This is the quantity the depth rule of
    :class:`~sklearn_structlearn.DeepStructureLearner` asks a new layer to lower.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_units)
        Outputs of a layer; must be finite.
    **kwargs
        Passed to :func:`~sklearn_structlearn.output_entropy` (``n_bins``, ``zero_tol``, ``bias_correction``).

    Returns
    -------
    redundancy : float
        In ``[0, 1]``.

    Examples
    --------
    Parts that always come in pairs are redundant; the pairs themselves are not:

    >>> import numpy as np
    >>> from sklearn_structlearn.entropy import output_redundancy
    >>> rng = np.random.default_rng(0)
    >>> objects = (rng.random((2000, 4)) < 0.3) * rng.uniform(0.5, 1.5, (2000, 4))
    >>> parts = np.repeat(objects, 2, axis=1) * rng.uniform(0.5, 1.5, (2000, 8))
    >>> bool(output_redundancy(parts) > 0.2 > 0.02 > output_redundancy(objects))
    True
    """
    return redundancy_given_entropy(Z, output_entropy(Z, "binned", **kwargs))


def redundancy_given_entropy(Z, binned_entropy):
    """:func:`output_redundancy` of ``Z`` whose binned entropy is already known."""
    if binned_entropy <= 0:
        return 0.0
    return float(min(total_correlation(Z) / binned_entropy, 1.0))


def _binned_unit_entropies(Z, *, n_bins, zero_tol, bias_correction):
    """Per-unit discrete entropy (bits) of the zero-bin + quantile discretisation."""
    n_samples, n_units = Z.shape
    is_zero = np.abs(Z) <= zero_tol
    n_zero = is_zero.sum(axis=0)
    n_nonzero = n_samples - n_zero

    # Ranking zeros as -inf puts them below every non-zero value of their column,
    # so the rank of a non-zero value among the non-zeros is its overall rank
    # minus the column's number of zeros.  "average" ranks give tied values one
    # common rank, hence one common bin.
    ranks = rankdata(np.where(is_zero, -np.inf, Z), method="average", axis=0)
    # Average ranks are multiples of 1/2, so twice the rank is an exact integer
    # and the bin index floor((r - 1/2) / n_nonzero * n_bins) can be computed
    # in integer arithmetic, free of rounding at bin edges.
    twice_rank = np.rint(2.0 * ranks).astype(np.int64) - 2 * n_zero
    denom = 2 * np.maximum(n_nonzero, 1)
    # A table of n_units x (n_bins + 1) counts, unless that is much more than the values
    # themselves (a huge n_bins would need more memory than the machine has): then the
    # occupied bins are counted by sorting. With n_bins >= 2 * n_samples every distinct
    # non-zero value has a bin of its own (consecutive twice-ranks differ by at least 1),
    # so such an n_bins makes the same bins as 2 * n_samples -- which also keeps the
    # products below in int64.
    small_table = n_units * (n_bins + 1) <= max(4 * Z.size, 2**22)
    bins = n_bins if small_table else min(n_bins, 2 * n_samples)
    codes = (twice_rank - 1) * bins // denom
    np.clip(codes, 0, bins - 1, out=codes)
    codes += 1
    codes[is_zero] = 0  # bin 0 is the zero bin

    n_codes = bins + 1
    offsets = n_codes * np.arange(n_units, dtype=np.int64)
    if small_table:
        counts = np.bincount(
            (codes + offsets).ravel(), minlength=n_units * n_codes
        ).reshape(n_units, n_codes)
        h = entr(counts / n_samples).sum(axis=1)  # nats
        n_occupied = np.count_nonzero(counts, axis=1)
    else:
        keys, counts = np.unique(codes + offsets, return_counts=True)
        unit = keys // n_codes
        h = np.bincount(unit, weights=entr(counts / n_samples), minlength=n_units)
        n_occupied = np.bincount(unit, minlength=n_units)
    if bias_correction:
        h = np.minimum(h + (n_occupied - 1) / (2.0 * n_samples), np.log(n_bins + 1.0))
    return h / np.log(2.0)


def _unit_scaled(Z):
    """``Z`` with each column divided by ``2 ** e_j`` (``e_j`` the binary exponent of its
    largest absolute value; 0 for a zero column), and the exponents."""
    largest = np.abs(Z).max(axis=0) if Z.shape[0] else np.zeros(Z.shape[1])
    exponents = np.frexp(largest)[1]
    return np.ldexp(Z, -exponents), exponents


def _knn_entropy(Z, *, k, max_samples, random_state):
    """Kozachenko-Leonenko joint differential entropy (bits), Euclidean norm."""
    n_samples, n_dims = Z.shape
    if n_samples < 2:
        raise ValueError(
            "The 'knn' estimator needs at least 2 samples in Z, got "
            f"{n_samples}."
        )
    if max_samples is not None and n_samples > max_samples:
        rows = np.sort(random_state.choice(n_samples, size=max_samples, replace=False))
        Z = Z[rows]
        n_samples = max_samples
    if k >= n_samples:
        raise ValueError(
            f"k={k} must be smaller than the number of samples used by the 'knn' "
            f"estimator ({n_samples})."
        )

    # float64 for the distances whatever the input dtype; centring first lets the
    # tiny tie-breaking noise survive rounding for columns far from the origin.
    X = np.asarray(Z, dtype=np.float64)
    # Far from unit scale, the data are divided by a power of two 2**e (exactly) so that
    # no distance over- or underflows; the entropy of X / 2**e is that of X minus
    # d * e bits, added back below.
    largest = float(np.abs(X).max()) if X.size else 0.0
    exponent = 0 if largest == 0 or 1e-100 <= largest <= 1e100 else int(np.frexp(largest)[1])
    X = np.ldexp(X, -exponent)
    X = X - X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    X += _KNN_JITTER * scale * random_state.standard_normal(X.shape)

    # cKDTree computes exact coordinate differences (unlike the GEMM expansion of
    # brute-force Euclidean search, which loses tiny distances to cancellation).
    dist, _ = cKDTree(X).query(X, k=k + 1)  # neighbour 0 is the point itself
    eps = dist[:, k]
    # Guard for the (probability zero) case of a tie surviving the jitter.
    eps = np.maximum(eps, np.finfo(np.float64).tiny)

    log_unit_ball = 0.5 * n_dims * np.log(np.pi) - gammaln(0.5 * n_dims + 1.0)
    h = (
        digamma(n_samples)
        - digamma(k)
        + log_unit_ball
        + n_dims * np.mean(np.log(eps))
    )
    return float(h / np.log(2.0) + n_dims * exponent)
