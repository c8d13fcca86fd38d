"""The "auto" rules of a layer that keeps its input's information (issue 12, stage 1).

Each rule is a function of the layer's *inputs* (no labels, no fitted layer), with one
documented target; the estimators call them in ``fit`` (stage 2 wires them in):

- :func:`auto_n_components` -- the width: an overcomplete code, ``EXPANSION`` units per
  input, capped by what the data can determine (``SAMPLES_PER_UNIT`` rows per unit) and
  by what the solvers can afford (``MAX_COMPONENTS``).
- :func:`auto_alpha` -- the code penalty: the largest penalty at which codes on
  reference atoms (normalised random rows) explain ``EXPLAINED_VARIANCE`` of the
  input's variance (:func:`~sklearn_structlearn._information.explained_variance`):
  as sparse as the code can be while keeping that much of the input.
- :func:`relative_alpha` -- the scale-free form of the code penalty: a fraction of
  :func:`~sklearn_structlearn._information.input_scale`, the penalty at which the codes
  of a typical row vanish on every dictionary; a grid search over it needs no pre-fit.
- :func:`relative_connectivity_alpha` -- the connectivity penalty as a fraction of the
  code cost of the typical unit (the package's existing rule,
  :func:`~sklearn_structlearn._penalties.connectivity_from_codes`), at a ratio that
  keeps every unit alive at the widths above.
- :func:`keep_layer` -- the depth rule: a layer is kept while the representation handed
  on (every kept layer's outputs side by side) keeps measurably more of the input in
  linearly readable form (:func:`~sklearn_structlearn._information.decoding_information`,
  which does not reward dense or wide outputs by construction).

The constants are the values the measurements of ``benchmarks/bench_features.py`` and
the research notes of issue 12 support (see ``benchmarks/RESULTS.md``).
"""

import numpy as np
from sklearn.utils import check_random_state

from ._information import (
    alpha_for_explained_variance,
    decoding_information,
    input_scale,
)
from ._penalties import AUTO_SUBSAMPLE, connectivity_from_codes, subsample_and_reference_atoms

__all__ = [
    "auto_n_components",
    "auto_alpha",
    "relative_alpha",
    "relative_connectivity_alpha",
    "keep_layer",
    "research_params",
]

# units per input feature: an overcomplete code (8x: digits' 64 pixels get 512 units)
EXPANSION = 8
# what the solvers afford today in the 2-minute budget of a default fit (issue 13 raises it)
MAX_COMPONENTS = 1024
# a unit is estimated from the rows it is active on; with fewer than 2 rows per unit
# the dictionary memorises the training rows
SAMPLES_PER_UNIT = 2
# the smallest layer worth fitting
MIN_COMPONENTS = 16
# fraction of the input's variance the reference codes must explain
EXPLAINED_VARIANCE = 0.9
# compute cap on the code density: at most this many active units per row on average
# (the code solver's cost grows like the cube of the active set); it binds on
# high-dimensional whitened inputs (Fashion-MNIST: ~0.62 explained instead of 0.9)
MAX_ACTIVE = 48
# connectivity penalty / code cost of the median unit (the existing rule uses 0.13,
# which kills 6-12% of the units at 256-512 units on digits)
CONNECTIVITY_RATIO = 0.04
# ZCA regulariser (x the mean eigenvalue): whitening that flattens only the strongest
# directions keeps the codes of high-dimensional inputs sparse at a given explained variance
ZCA_EPSILON = 1.0
# a deeper layer must raise the linearly decodable variance of the input by this much
DEPTH_TOL = 0.01


def auto_n_components(n_features, n_samples, group_size=1, *, expansion=EXPANSION,
                      max_components=MAX_COMPONENTS, samples_per_unit=SAMPLES_PER_UNIT):
    """Width of a layer: ``expansion`` units per input, capped by the data and the solvers.

    ``min(expansion * n_features, n_samples // samples_per_unit, max_components)``, at
    least ``MIN_COMPONENTS`` (16) and ``group_size``, rounded down to a multiple of
    ``group_size``.

    Parameters
    ----------
    n_features : int
        Inputs of the layer.
    n_samples : int
        Rows the layer is fitted on.
    group_size : int, default=1
        Units per group.
    expansion : int, default=EXPANSION
        Units per input feature.
    max_components : int, default=MAX_COMPONENTS
        Cap set by the solvers' cost.
    samples_per_unit : int, default=SAMPLES_PER_UNIT
        Rows needed per unit.

    Returns
    -------
    n_components : int

    Examples
    --------
    >>> from sklearn_structlearn._auto_width import auto_n_components
    >>> auto_n_components(64, 1257)       # digits: 8 x 64
    512
    >>> auto_n_components(13, 142)        # wine: capped by the 142 rows
    71
    >>> auto_n_components(784, 20000)     # Fashion-MNIST: capped by the solvers
    1024
    """
    k = min(expansion * n_features, n_samples // samples_per_unit, max_components)
    k = max(k, MIN_COMPONENTS, group_size)
    return int(k // group_size * group_size)


def auto_alpha(X, n_components, group_size=1, *, explained_variance=EXPLAINED_VARIANCE,
               max_active=MAX_ACTIVE, positive=False, n_subsample=AUTO_SUBSAMPLE,
               random_state=None, n_jobs=None):
    """Code penalty at which reference codes explain ``explained_variance`` of ``X``.

    On a subsample of ``X``, ``n_components`` reference atoms (normalised random rows,
    the same as the connectivity rule's,
    :func:`~sklearn_structlearn._penalties.subsample_and_reference_atoms`) are used to
    find the largest penalty whose codes still explain the target fraction of the
    variance (:func:`~sklearn_structlearn._information.alpha_for_explained_variance`).
    A learned dictionary explains more at the same penalty (measured: +0.02 to +0.12),
    so the fitted layer keeps at least the target.

    The target is capped by a compute budget: if the codes at that penalty have more
    than ``max_active`` active units per row on average, the penalty is raised until
    they have ``max_active`` (bisection, as the package's active-fraction rule,
    :func:`~sklearn_structlearn._penalties.alpha_for_active_fraction`). This binds on
    high-dimensional whitened inputs only.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Inputs of the layer (preprocessed, centred).
    n_components : int
        Units of the layer.
    group_size : int, default=1
        Units per group.
    explained_variance : float, default=EXPLAINED_VARIANCE
        Target fraction, in (0, 1).
    max_active : float or None, default=MAX_ACTIVE
        Cap on the mean number of active units per row (``None``: no cap).
    positive : bool, default=False
        Non-negative codes.
    n_subsample : int, default=AUTO_SUBSAMPLE
        Rows used.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsample and the atoms.
    n_jobs : int, default=None
        Threads of the code solver.

    Returns
    -------
    alpha : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn._auto_width import auto_alpha
    >>> X = np.random.default_rng(0).standard_normal((400, 10))
    >>> a90 = auto_alpha(X, 40, explained_variance=0.9, random_state=0)
    >>> a50 = auto_alpha(X, 40, explained_variance=0.5, random_state=0)
    >>> bool(0 < a90 < a50)
    True
    >>> bool(auto_alpha(X, 40, explained_variance=0.9, max_active=2, random_state=0) > a90)
    True
    """
    from ._information import _codes
    from ._penalties import alpha_for_active_fraction
    from .objective import alpha_max

    rng = check_random_state(random_state)
    sub, atoms = subsample_and_reference_atoms(np.asarray(X, dtype=np.float64), n_subsample,
                                               n_components, rng)
    alpha = alpha_for_explained_variance(sub, atoms, explained_variance, group_size=group_size,
                                         positive=positive, n_jobs=n_jobs)
    if max_active is None:
        return alpha

    def too_dense(penalty):
        codes = _codes(sub, atoms, penalty, group_size, positive, n_jobs)
        return np.count_nonzero(codes) / codes.shape[0] > max_active

    if not too_dense(alpha):
        return alpha
    return alpha_for_active_fraction(too_dense, alpha_max(sub, atoms, group_size, positive),
                                     n_halvings=12)


def relative_alpha(alpha, X):
    """Absolute code penalty from a fraction of :func:`input_scale` (the scale-free form).

    ``alpha * input_scale(X)``: 1.0 (or more) silences a row of typical norm on every
    dictionary of unit-norm atoms, 0 is no penalty. The value means the same on data
    of any scale, so ``GridSearchCV`` over it needs no pre-fit.

    Parameters
    ----------
    alpha : float
        Fraction, >= 0.
    X : ndarray of shape (n_samples, n_features)
        Inputs of the layer.

    Returns
    -------
    alpha_absolute : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn._auto_width import relative_alpha
    >>> X = np.random.default_rng(0).standard_normal((100, 5))
    >>> bool(np.isclose(relative_alpha(0.1, 10 * X), 10 * relative_alpha(0.1, X)))
    True
    """
    return float(alpha) * input_scale(X)


def relative_connectivity_alpha(ratio, X, alpha, n_components, group_size=1, *,
                                positive=False, n_subsample=AUTO_SUBSAMPLE,
                                random_state=None, n_jobs=None):
    """Connectivity penalty as ``ratio`` times the code cost of the median unit.

    The package's rule (:func:`~sklearn_structlearn._penalties.connectivity_from_codes`,
    ``ratio * alpha * median_k mean_i |A_ik|`` with codes ``A`` of a subsample on
    reference atoms) is already scale free: ``ratio`` is the relative form of the
    penalty, ``CONNECTIVITY_RATIO`` its default.

    Parameters
    ----------
    ratio : float
        Connectivity penalty relative to the typical unit's code cost.
    X : ndarray of shape (n_samples, n_features)
        Inputs of the layer.
    alpha : float
        The layer's (absolute) code penalty.
    n_components, group_size : int
        Units and units per group.
    positive : bool, default=False
        Non-negative codes.
    n_subsample : int, default=AUTO_SUBSAMPLE
        Rows used.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsample and the atoms.
    n_jobs : int, default=None
        Threads of the code solver.

    Returns
    -------
    connectivity_alpha : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn._auto_width import relative_connectivity_alpha
    >>> X = np.random.default_rng(0).standard_normal((300, 10))
    >>> lam = relative_connectivity_alpha(0.04, X, 0.5, 40, random_state=0)
    >>> lam10 = relative_connectivity_alpha(0.04, 10 * X, 5.0, 40, random_state=0)
    >>> bool(np.isclose(lam10, 100 * lam))
    True
    """
    from ._information import _codes

    if ratio == 0:
        return 0.0
    rng = check_random_state(random_state)
    sub, atoms = subsample_and_reference_atoms(np.asarray(X, dtype=np.float64), n_subsample,
                                               n_components, rng)
    codes = _codes(sub, atoms, alpha, group_size, positive, n_jobs)
    return connectivity_from_codes(codes, alpha, ratio)


def keep_layer(X, outputs_below, new_outputs, *, tol=DEPTH_TOL, random_state=0):
    """The depth rule: is the representation better with the new layer's outputs?

    The representation handed on is every kept layer's outputs side by side. The new
    layer is kept when the fraction of the input's variance that a linear read-out of
    that representation recovers on held-out rows
    (:func:`~sklearn_structlearn._information.decoding_information`) grows by at least
    ``tol``. A deterministic layer cannot add information about ``X``; what it can do
    is make more of it *linearly readable* (a non-linear function of the layer below),
    which is what a linear read-out downstream can use. The measure does not grow with
    the width or the density of the new outputs by construction (held-out rows, penalty
    chosen against overfitting).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The preprocessed input of the first layer.
    outputs_below : list of ndarray
        Outputs of the kept layers, bottom first.
    new_outputs : ndarray of shape (n_samples, n_new)
        Outputs of the candidate layer.
    tol : float, default=DEPTH_TOL
        Minimum gain of the decodable fraction.
    random_state : int, default=0
        Seeds the decoder's split.

    Returns
    -------
    keep : bool
    r2_below, r2_with : float
        Decodable fraction without and with the new layer.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn._auto_width import keep_layer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((1000, 6))
    >>> keep, _, _ = keep_layer(X, [X[:, :3]], X[:, 3:] ** 3)   # adds what was missing
    >>> drop, _, _ = keep_layer(X, [X[:, :3]], X[:, :3] * 2)   # says it again
    >>> bool(keep), bool(drop)
    (True, False)
    """
    below = np.hstack(outputs_below)
    r2_below, _ = decoding_information(X, below, random_state=random_state)
    r2_with, _ = decoding_information(X, np.hstack([below, new_outputs]),
                                      random_state=random_state)
    return bool(r2_with - r2_below >= tol), r2_below, r2_with


def research_params(n_features, n_samples):
    """``DeepStructureLearner`` settings the issue-12 research supports (NOT the defaults).

    Used by ``benchmarks/bench_features.py`` (row ``learner-research``) until stage 2 makes
    them the defaults; ``explained_variance`` is the target of :func:`auto_alpha`, not a
    learner parameter yet (pop it before passing the rest to the learner).

    Parameters
    ----------
    n_features, n_samples : int
        Shape of the data the learner is fitted on.

    Returns
    -------
    params : dict
        Keyword arguments of ``DeepStructureLearner``.

    Examples
    --------
    >>> from sklearn_structlearn._auto_width import research_params
    >>> research_params(64, 1257)["n_components"]
    512
    """
    return dict(max_depth=1, n_components=auto_n_components(n_features, n_samples),
                group_size=1, positive_code=True, pooling="l2", zca_epsilon=ZCA_EPSILON,
                explained_variance=EXPLAINED_VARIANCE)
