"""The "auto" rules: one rule per setting, shared by every estimator.

Each rule is one function with one documented target, a quantity measured on the
layer's inputs (no labels, no fitted layer):

- :func:`auto_n_components`, the width: an *overcomplete* code, ``AUTO_EXPANSION`` (8)
  units per input, capped by what the data can determine (``AUTO_SAMPLES_PER_UNIT`` rows
  per unit) and by what the solvers afford (``AUTO_MAX_COMPONENTS``);
- :func:`auto_alpha`, the code penalty: the largest penalty at which codes on
  *reference atoms* (normalised random rows of the data) still explain
  ``AUTO_EXPLAINED_VARIANCE`` (90%) of the variance of a random subsample
  (``_information.explained_variance``), unless that needs more
  than ``AUTO_MAX_ACTIVE`` active units per row (a compute budget);
- :func:`auto_connectivity_alpha`, the connectivity penalty: ``AUTO_CONNECTIVITY_RATIO``
  times the code cost of the median unit on those reference atoms.

Penalties given by hand can be given *relative* (``penalty_scale="relative"`` of the
estimators): the code penalty as a fraction of
``_information.input_scale`` (:func:`relative_alpha`; 1.0
silences a row of typical norm on every dictionary), the connectivity penalty as the
ratio of the rule above (:func:`relative_connectivity_alpha`).
Both mean the same on data of any scale, so ``GridSearchCV`` over them needs no pre-fit.

:class:`~sklearn_structlearn.GroupSparseCodingLayer` applies the rules when
``n_components=None`` / ``alpha="auto"`` / ``connectivity_alpha="auto"``;
:class:`~sklearn_structlearn.DeepStructureLearner` passes them on to its layers, so a
layer resolves the same values alone or inside the learner. :func:`auto_penalties` gives
both penalties for given data (the two rules on one subsample). Changing a rule is a
change of one function here.

Why these targets. A layer must keep its input's information (the efficient coding
principle it implements): an overcomplete code of which each unit is rarely active,
together able to reconstruct the input. The code penalty therefore targets what it
trades against sparsity, the variance the codes explain; a learned dictionary explains
more than the reference atoms at the same penalty (measured: +0.02 to +0.12), so a
fitted layer keeps at least the target. The former rule (a fixed 25% of active groups at
a width equal to the input's) kept as little as 2% of the input's entropy on images and
classified worse than the raw pixels (issue 12). For the connectivity penalty:
rescaling an atom ``D_k`` by ``s <= 1`` (and its codes by ``1 / s``) leaves the
reconstruction unchanged, lowers the connectivity cost ``connectivity_alpha * ||D_k||_1``
by ``s`` and raises the code cost, about ``alpha * mean_i |A_ik|``, by ``1 / s``. A unit
whose connections cost more than its codes therefore shrinks, is used less, and dies.
Tying the connectivity penalty to the code cost of the typical unit keeps a typical unit
with ``||D_k||_1`` below ``1 / AUTO_CONNECTIVITY_RATIO`` out of that spiral, whatever
the number of inputs and the scale of the data (both penalties scale like the data:
``alpha`` like its scale, ``connectivity_alpha`` like its variance). At the wide layers
above, the former ratio 0.13 killed 6-12% of the units (digits, 256-512 units); 0.04
keeps them alive. The measurements behind the constants are in ``benchmarks/RESULTS.md``.

The penalty rules measure on reference atoms rather than on a layer's own initial
dictionary, so the penalties depend on the data (and, for the connectivity, on ``alpha``)
only, not on how a layer initialises its atoms.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array, check_random_state

from ._information import explained_variance, input_scale
from ._param_validation import N_JOBS, int_in, real_in, validate_params
from ._sparse import ACCEPT_SPARSE
from ._threads import thread_limits
from ._validation import check_magnitude, check_numeric_dtype
from .encoding import solve_codes_any
from .objective import alpha_max

__all__ = [
    "AUTO_CONNECTIVITY_RATIO",
    "AUTO_EXPANSION",
    "AUTO_EXPLAINED_VARIANCE",
    "AUTO_MAX_ACTIVE",
    "AUTO_MAX_COMPONENTS",
    "AUTO_SUBSAMPLE",
    "auto_alpha",
    "auto_connectivity_alpha",
    "auto_n_components",
    "auto_penalties",
    "relative_alpha",
    "relative_connectivity_alpha",
]

#: Units per input of the "auto" width: an overcomplete code (digits' 64 pixels get 512
#: units, wine's 13 features 104 when the rows allow it).
AUTO_EXPANSION = 8
#: Cap of the "auto" width set by the solvers' cost (a default fit of 20,000
#: Fashion-MNIST images in about two minutes on two cores).
AUTO_MAX_COMPONENTS = 1024
#: Rows per unit the "auto" width needs: a unit is estimated from the rows it is active
#: on; with fewer than 2 rows per unit the dictionary memorises the training rows.
AUTO_SAMPLES_PER_UNIT = 2
#: The smallest "auto" width.
AUTO_MIN_COMPONENTS = 16
#: Target of the "auto" code penalty: the fraction of the input's variance the codes on
#: reference atoms explain.
AUTO_EXPLAINED_VARIANCE = 0.9
#: Compute budget of the "auto" code penalty: at most this many active units per row on
#: average (the code solver's cost grows like the cube of the active set). It binds on
#: high-dimensional whitened inputs only (Fashion-MNIST: about 0.6 explained by the
#: reference atoms instead of 0.9; the learned dictionary explains more).
AUTO_MAX_ACTIVE = 48
#: Target of the "auto" connectivity penalty: its ratio to the code cost of the median
#: unit. Measured on digits, Fashion-MNIST and tables at the "auto" widths: every unit
#: alive (0.13, the former value, killed 6-12% of the units at 256-512 units on digits).
AUTO_CONNECTIVITY_RATIO = 0.04
#: Rows of the subsample on which the reference codes are computed.
AUTO_SUBSAMPLE = 512
# precision of the bisections of the code penalty: 12 halvings of [1e-4, 1] * alpha_max
_N_HALVINGS = 12


def auto_n_components(n_features, n_samples=None, group_size=1):
    """The "auto" width of a layer: ``AUTO_EXPANSION`` units per input, capped.

    ``min(8 * n_features, n_samples // 2, 1024)`` (``AUTO_EXPANSION``,
    ``AUTO_SAMPLES_PER_UNIT``, ``AUTO_MAX_COMPONENTS``), at least ``AUTO_MIN_COMPONENTS``
    (16) and one group, rounded down to a multiple of ``group_size``. Target: an
    overcomplete code that keeps the input's information, with enough rows to estimate
    every unit.

    Parameters
    ----------
    n_features : int
        Inputs of the layer.
    n_samples : int or None, default=None
        Rows the layer is fitted on (``None``: unknown, e.g. the first batch of a stream;
        no cap by the rows).
    group_size : int, default=1
        Units per group.

    Returns
    -------
    n_components : int
        Units of the layer, a multiple of ``group_size``.

    Examples
    --------
    >>> from sklearn_structlearn.penalties import auto_n_components
    >>> auto_n_components(64, 1257)       # digits: 8 x 64
    512
    >>> auto_n_components(13, 142)        # wine: capped by the 142 rows
    71
    >>> auto_n_components(784, 20000)     # Fashion-MNIST: capped by the solvers
    1024
    >>> auto_n_components(13, 142, group_size=4)
    68
    """
    k = min(AUTO_EXPANSION * n_features, AUTO_MAX_COMPONENTS)
    if n_samples is not None:
        k = min(k, n_samples // AUTO_SAMPLES_PER_UNIT)
    k = max(k, AUTO_MIN_COMPONENTS, group_size)
    return int(k // group_size * group_size)


def _check_rule_inputs(X, n_components, group_size):
    check_numeric_dtype(X, "X")
    X = check_array(X, dtype=[np.float64, np.float32], accept_sparse=ACCEPT_SPARSE)
    check_magnitude(X, "X")
    if n_components is None:
        n_components = auto_n_components(X.shape[1], X.shape[0], group_size)
    return X, n_components


def normalised_atoms(rows, rng):
    """Rows as unit-norm atoms, jittered (1% of their RMS) so that duplicates differ."""
    D = np.asarray(rows.toarray() if sp.issparse(rows) else rows, dtype=np.float64)
    scale = np.sqrt(np.mean(D**2)) if np.any(D) else 1.0
    D = D + 0.01 * scale * rng.standard_normal(D.shape)
    norms = np.linalg.norm(D, axis=1, keepdims=True)
    return D / np.where(norms > 0, norms, 1.0)


def reference_sample(X, n_subsample, n_components, rng):
    """A random subsample of ``X`` and reference atoms drawn from *other* rows.

    The reference atoms on which the "auto" penalties are measured are normalised random
    rows: they depend on the data only, not on how a layer initialises its own dictionary
    (which may, e.g., seed the atoms of a group from near-identical samples and so split
    their codes). They are drawn from rows outside the coded subsample whenever at least a
    quarter of the rows (and 2) remain to be coded: a row coded on its own (jittered) copy
    needs that single atom only, so with as many atoms as subsample rows the penalty that
    activates a target fraction of the groups collapsed by ~100x (512 units: alpha 0.0075
    instead of ~0.6, and codes so dense that a layer fit took minutes per iteration).

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    n_subsample, n_components : int
    rng : RandomState

    Returns
    -------
    sub : ndarray of shape (n_sub, n_features), float64
    atoms : ndarray of shape (n_components, n_features), float64, unit rows
    """
    n_samples = X.shape[0]
    order = rng.permutation(n_samples)
    n_coded = min(n_subsample, n_samples - n_components)
    if n_coded >= max(2, n_samples // 4):
        sub_rows, atom_rows = order[:n_coded], order[n_coded:n_coded + n_components]
    else:  # too few rows to keep them apart: overlap (more units than rows to spare)
        sub_rows = order[:min(n_subsample, n_samples)]
        atom_rows = rng.choice(n_samples, size=n_components, replace=n_samples < n_components)
    sub = X[np.sort(sub_rows)]
    sub = np.asarray(sub.toarray() if sp.issparse(sub) else sub, dtype=np.float64)
    return sub, normalised_atoms(X[atom_rows], rng)


def rough_codes(sub, D, alpha, group_size, positive=False, n_jobs=None):
    """Codes of ``sub`` on ``D`` to a loose tolerance (200 iterations, gap 1e-3).

    Statistics, not a result for the user: the solver's warnings are not raised (a loose
    solve is meant, and all-zero codes near ``alpha_max`` are a valid measurement).
    """
    with thread_limits(n_jobs):
        return solve_codes_any(sub, D, alpha, group_size, positive, None, 200, 1e-3)[0]


def alpha_for_active_fraction(too_dense, alpha_max_value, *, n_halvings=14):
    """Code penalty at the boundary where ``too_dense(alpha)`` switches to False.

    ``too_dense(alpha)`` says whether more than the target fraction of groups is active at
    ``alpha`` (decreasing in alpha). The target is first bracketed by halving alpha down
    from ``alpha_max``, then bisected in log scale to the precision of ``n_halvings``
    halvings of ``[1e-4, 1] * alpha_max``. Bracketing from above matters: a plain bisection
    of that interval first solves at ``1e-2 * alpha_max``, where most groups are active and
    one solve costs more than all the others together (the code solver's cost grows like
    ``|support|^3``); halving only ever solves at most 2x below the answer.

    Examples
    --------
    >>> from sklearn_structlearn.penalties import alpha_for_active_fraction
    >>> round(alpha_for_active_fraction(lambda a: a < 0.3, 1.0), 3)
    0.3
    """
    high = float(alpha_max_value)
    floor = high * 1e-4
    low = floor
    while high / 2 > floor:
        if too_dense(high / 2):
            low = high / 2
            break
        high /= 2
    # bounded loop: a subnormal alpha_max could make ``floor`` 0
    for _ in range(64):
        if high <= low * 1e4 ** (2.0**-n_halvings):
            break
        mid = np.sqrt(low * high)
        if too_dense(mid):
            low = mid
        else:
            high = mid
    return float(np.sqrt(low * high))


def alpha_for_explained_variance(sub, D, target, *, group_size=1, positive=False,
                                 n_jobs=None):
    """The largest code penalty at which the codes of ``sub`` on ``D`` explain ``target``.

    The explained variance of the codes decreases (weakly) as ``alpha`` grows, from its
    least-squares value at ``alpha = 0`` to 0 at ``alpha_max(sub, D)``. The penalty is
    bracketed by halving down from ``alpha_max`` (cheap, sparse solves first: the
    solver's cost grows with the support) and bisected in log scale (``_N_HALVINGS``
    steps).

    Parameters
    ----------
    sub : ndarray of shape (n_samples, n_features)
        Rows (a subsample is enough: the ratio is an average).
    D : ndarray of shape (n_components, n_features)
        Unit-norm atoms.
    target : float
        Fraction of the variance to explain, in (0, 1).
    group_size : int, default=1
        Units per group.
    positive : bool, default=False
        Non-negative codes.
    n_jobs : int, default=None
        Threads of the code solver.

    Returns
    -------
    alpha : float
        The lower end of the final bracket; 0.0 when even ``alpha_max * 2**-20`` falls
        short of ``target``, or when ``sub`` is all zeros.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn import group_sparse_encode
    >>> from sklearn_structlearn._information import explained_variance
    >>> from sklearn_structlearn.penalties import alpha_for_explained_variance
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 10))
    >>> D = rng.standard_normal((20, 10))
    >>> D /= np.linalg.norm(D, axis=1, keepdims=True)
    >>> alpha = alpha_for_explained_variance(X, D, 0.8)
    >>> codes = group_sparse_encode(X, D, alpha=alpha)
    >>> bool(0.78 <= explained_variance(X, codes, D) <= 0.85)
    True
    """
    if not 0 < target < 1:
        raise ValueError(f"target must be in (0, 1), got {target!r}.")
    high = float(alpha_max(sub, D, group_size, positive))
    if high <= 0:
        return 0.0

    def explains(alpha):
        codes = rough_codes(sub, D, alpha, group_size, positive, n_jobs)
        return explained_variance(sub, codes, D) >= target

    low = None
    for _ in range(20):
        if explains(high / 2):
            low = high / 2
            break
        high /= 2
    if low is None:
        return 0.0
    for _ in range(_N_HALVINGS):
        mid = np.sqrt(low * high)
        if explains(mid):
            low = mid
        else:
            high = mid
    return float(low)


def _alpha_on_reference(sub, D, group_size, positive, target, max_active, n_jobs):
    """The "auto" code penalty on reference atoms ``D`` and rows ``sub``.

    The largest penalty whose codes explain ``target`` of the variance, raised until
    at most ``max_active`` units are active per row on average (``None``: no cap).
    None when ``sub`` is all zeros (every penalty gives zero codes).
    """
    high = float(alpha_max(sub, D, group_size, positive))
    if high <= 0:
        return None

    def too_dense(penalty):
        codes = rough_codes(sub, D, penalty, group_size, positive, n_jobs)
        return np.count_nonzero(codes) / codes.shape[0] > max_active

    if max_active is not None and max_active < D.shape[0]:
        # (a budget of more units than the layer has never binds)
        # the budget first: it is found solving only sparse problems (bracketing down
        # from alpha_max), and when the codes at the budget explain less than the target,
        # the budget is the answer -- the target would need denser solves, whose cost
        # grows like the cube of the active set (minutes on whitened images)
        budget = alpha_for_active_fraction(too_dense, high, n_halvings=_N_HALVINGS)
        at_budget = rough_codes(sub, D, budget, group_size, positive, n_jobs)
        if explained_variance(sub, at_budget, D) < target:
            return budget
    alpha = alpha_for_explained_variance(sub, D, target, group_size=group_size,
                                         positive=positive, n_jobs=n_jobs)
    if alpha == 0:
        # the atoms cannot explain the target at all (few atoms, non-negative codes):
        # aim at the same fraction of what they can explain (at alpha_max * 2**-20), not
        # at a nearly unpenalised code, which is not sparse and slow to solve
        floor = rough_codes(sub, D, high * 2.0**-20, group_size, positive, n_jobs)
        reachable = explained_variance(sub, floor, D)
        if reachable > 0:
            alpha = alpha_for_explained_variance(sub, D, target * reachable,
                                                 group_size=group_size, positive=positive,
                                                 n_jobs=n_jobs)
    if max_active is None or (alpha > 0 and not too_dense(alpha)):
        return alpha
    return alpha_for_active_fraction(too_dense, high, n_halvings=_N_HALVINGS)


def connectivity_from_codes(codes, alpha, ratio=None):
    """Connectivity penalty scaled to the code cost of the median unit.

    Parameters
    ----------
    codes : ndarray of shape (n_samples, n_components)
        Codes of reference atoms (:func:`reference_sample`) at ``alpha``.
    alpha : float
        Code penalty.
    ratio : float, default=None
        Ratio to the typical code cost (``None``: ``AUTO_CONNECTIVITY_RATIO``, 0.04).

    Returns
    -------
    connectivity_alpha : float
        ``ratio * alpha * median_k mean_i |codes_ik|`` (0 for empty codes).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.penalties import connectivity_from_codes
    >>> codes = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 2.0]])
    >>> round(connectivity_from_codes(codes, alpha=0.5, ratio=0.1), 6)  # 0.1 * 0.5 * 0.5
    0.025
    """
    if ratio is None:
        ratio = AUTO_CONNECTIVITY_RATIO
    codes = np.asarray(codes)
    if codes.size == 0:
        return 0.0
    typical_code = float(np.median(np.mean(np.abs(codes), axis=0, dtype=np.float64)))
    return float(ratio * alpha * typical_code)


_RULE_PARAMS = {
    "X": ["array-like", "sparse matrix"],
    "n_components": [int_in(1), None],
    "group_size": [int_in(1)],
    "positive": ["boolean"],
    "random_state": ["random_state"],
    "n_jobs": N_JOBS,
}


@validate_params(_RULE_PARAMS, prefer_skip_nested_validation=True)
def auto_alpha(X, n_components, group_size, *, positive=False, random_state=None,
               n_jobs=None):
    """The "auto" code penalty of a layer fitted on ``X``.

    Target: the largest penalty at which the codes of a random subsample of
    ``AUTO_SUBSAMPLE`` rows on reference atoms (``n_components`` normalised random other
    rows of ``X``, :func:`reference_sample`) explain ``AUTO_EXPLAINED_VARIANCE`` (90%) of
    its variance (:func:`alpha_for_explained_variance`): as sparse as the code can be
    while keeping that much of the input. When the atoms cannot explain that much at any
    penalty (few atoms, non-negative codes), the target is that fraction of what they
    can explain. Compute budget: if the codes at that penalty
    have more than ``AUTO_MAX_ACTIVE`` (48) active units per row on average, the penalty
    is raised until they have that many (:func:`alpha_for_active_fraction`).

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Inputs of the layer (already checked by the caller: finite floats).
    n_components : int or None
        Units of the layer (``None``: :func:`auto_n_components`).
    group_size : int
        Units per group.
    positive : bool, default=False
        Non-negative codes.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsample and the reference atoms.
    n_jobs : int, default=None
        Threads of the code solver (``None``: all cores available to Numba).

    Returns
    -------
    alpha : float
        1.0 for all-zero inputs (any penalty gives zero codes).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.penalties import auto_alpha
    >>> X = np.random.RandomState(0).standard_normal((300, 20))
    >>> a = auto_alpha(X, 16, 2, random_state=0)
    >>> bool(np.isclose(auto_alpha(10 * X, 16, 2, random_state=0), 10 * a))
    True
    """
    X, n_components = _check_rule_inputs(X, n_components, group_size)
    sub, D = reference_sample(X, AUTO_SUBSAMPLE, n_components, check_random_state(random_state))
    alpha = _alpha_on_reference(sub, D, group_size, positive, AUTO_EXPLAINED_VARIANCE,
                                AUTO_MAX_ACTIVE, n_jobs)
    return 1.0 if alpha is None else alpha


@validate_params({**_RULE_PARAMS, "alpha": [real_in(0)]}, prefer_skip_nested_validation=True)
def auto_connectivity_alpha(X, alpha, n_components, group_size, *, positive=False,
                            random_state=None, n_jobs=None):
    """The "auto" connectivity penalty of a layer fitted on ``X`` with code penalty ``alpha``.

    Target: ``AUTO_CONNECTIVITY_RATIO`` (0.04) times the code cost of the median unit,
    ``alpha * median_k mean_i |A_ik|``, ``A`` the codes at ``alpha`` of a random
    subsample of ``AUTO_SUBSAMPLE`` rows on reference atoms (``n_components`` normalised
    random rows, :func:`reference_sample`).

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Inputs of the layer.
    alpha : float
        Code penalty of the layer.
    n_components : int or None
        Units of the layer (``None``: :func:`auto_n_components`).
    group_size : int
        Units per group.
    positive : bool, default=False
        Non-negative codes.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsample and the reference atoms.
    n_jobs : int, default=None
        Threads of the code solver.

    Returns
    -------
    connectivity_alpha : float
        The penalty (0 for all-zero inputs).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.penalties import auto_connectivity_alpha
    >>> X = np.random.RandomState(0).standard_normal((300, 20))
    >>> lam = auto_connectivity_alpha(X, 1.0, 16, 2, random_state=0)
    >>> lam10 = auto_connectivity_alpha(10 * X, 10.0, 16, 2, random_state=0)
    >>> bool(np.isclose(lam10, 100 * lam))  # scales like the data's variance
    True
    """
    return relative_connectivity_alpha(X, AUTO_CONNECTIVITY_RATIO, alpha, n_components,
                                       group_size, positive=positive,
                                       random_state=random_state, n_jobs=n_jobs)


@validate_params(
    {
        **_RULE_PARAMS,
        "alpha": [real_in(0), None],
        "explained_variance": [real_in(0, 1, closed="neither"), None],
        "max_active": [real_in(0, closed="neither"), None],
        "connectivity_ratio": [real_in(0), None],
        "n_subsample": [int_in(1)],
    },
    prefer_skip_nested_validation=True,
)
def auto_penalties(
    X,
    n_components,
    group_size,
    *,
    positive=False,
    alpha=None,
    explained_variance=None,
    max_active=AUTO_MAX_ACTIVE,
    connectivity_ratio=None,
    n_subsample=AUTO_SUBSAMPLE,
    random_state=None,
    n_jobs=None,
):
    """Both "auto" penalties of a layer fitted on ``X``, measured on one subsample.

    On a subsample, reference atoms are drawn from normalised random rows
    (:func:`reference_sample`), then

    - ``alpha`` is the largest code penalty at which the codes on these atoms explain
      ``explained_variance`` of the subsample's variance, with at most ``max_active``
      active units per row (the target of :func:`auto_alpha`), unless it is given;
    - with the codes ``A`` at that penalty,
      ``connectivity_alpha = connectivity_ratio * alpha * median_k mean_i |A_ik|`` (the
      target of :func:`auto_connectivity_alpha`).

    A layer with both penalties "auto" applies the two rules on two subsamples of its
    own, so its values equal these up to the subsample.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Inputs of the layer.
    n_components : int or None
        Units of the layer (None: :func:`auto_n_components`).
    group_size : int
        Units per group.
    positive : bool, default=False
        Non-negative codes.
    alpha : float, default=None
        Code penalty to use instead of resolving it.
    explained_variance : float, default=None
        Target fraction of the variance, in (0, 1) (None: ``AUTO_EXPLAINED_VARIANCE``).
    max_active : float or None, default=AUTO_MAX_ACTIVE
        Cap on the mean number of active units per row (None: no cap).
    connectivity_ratio : float, default=None
        Ratio of the connectivity penalty to the typical code cost (None:
        ``AUTO_CONNECTIVITY_RATIO``).
    n_subsample : int, default=512
        Rows used.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsample and the atoms.
    n_jobs : int, default=None
        Threads of the code solver (``None``: all cores available to Numba).

    Returns
    -------
    alpha : float
        The code penalty (1.0 for all-zero inputs: nothing to code).
    connectivity_alpha : float
        The connectivity penalty (0.0 for all-zero inputs: nothing to prune).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.penalties import auto_penalties
    >>> X = np.random.RandomState(0).standard_normal((300, 20))
    >>> alpha, connectivity_alpha = auto_penalties(X, 16, 2, random_state=0)
    >>> bool(alpha > 0 and connectivity_alpha > 0)
    True
    """
    if explained_variance is None:
        explained_variance = AUTO_EXPLAINED_VARIANCE
    X, n_components = _check_rule_inputs(X, n_components, group_size)
    sub, D = reference_sample(X, n_subsample, n_components, check_random_state(random_state))
    if alpha is None:
        alpha = _alpha_on_reference(sub, D, group_size, positive, explained_variance,
                                    max_active, n_jobs)
        if alpha is None:
            return 1.0, 0.0
    codes = rough_codes(sub, D, alpha, group_size, positive, n_jobs)
    return float(alpha), connectivity_from_codes(codes, alpha, connectivity_ratio)



def relative_alpha(X, alpha):
    """The absolute code penalty of a relative one: ``alpha * input_scale(X)``.

    ``input_scale`` (``_information.input_scale``) is the
    root-mean-square row norm of ``X``: a relative ``alpha`` of 1 (or more) gives all-zero
    codes to a row of typical norm on *every* dictionary of unit-norm atoms, 0 is no
    penalty. It needs no fitted layer, so a grid over it means the same on data of any
    scale (the scale-free form of ``penalty_scale="relative"``).

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Inputs of the layer (checked by the caller).
    alpha : float
        Relative code penalty, >= 0.

    Returns
    -------
    alpha : float
        The absolute code penalty.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.penalties import relative_alpha
    >>> X = np.random.RandomState(0).standard_normal((100, 5))
    >>> bool(np.isclose(relative_alpha(10 * X, 0.1), 10 * relative_alpha(X, 0.1)))
    True
    """
    return float(alpha) * input_scale(X)


@validate_params({**_RULE_PARAMS, "alpha": [real_in(0)], "ratio": [real_in(0)]},
                 prefer_skip_nested_validation=True)
def relative_connectivity_alpha(X, ratio, alpha, n_components, group_size, *, positive=False,
                                random_state=None, n_jobs=None):
    """The absolute connectivity penalty of a relative one (``ratio``).

    ``ratio * alpha * median_k mean_i |A_ik|``, ``A`` the codes at ``alpha`` of a random
    subsample of ``AUTO_SUBSAMPLE`` rows on reference atoms (:func:`reference_sample`):
    the connectivity penalty as a fraction of the code cost of the median unit. It is
    scale free already; the "auto" rule (:func:`auto_connectivity_alpha`) is this rule at
    ``AUTO_CONNECTIVITY_RATIO``.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Inputs of the layer.
    ratio : float
        Relative connectivity penalty, >= 0.
    alpha : float
        Code penalty of the layer (absolute).
    n_components : int or None
        Units of the layer (None: :func:`auto_n_components`).
    group_size : int
        Units per group.
    positive : bool, default=False
        Non-negative codes.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsample and the reference atoms.
    n_jobs : int, default=None
        Threads of the code solver.

    Returns
    -------
    connectivity_alpha : float
        0.0 when ``ratio`` is 0 or the inputs are all zeros.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.penalties import relative_connectivity_alpha
    >>> X = np.random.RandomState(0).standard_normal((300, 10))
    >>> lam = relative_connectivity_alpha(X, 0.04, 0.5, 40, 1, random_state=0)
    >>> lam10 = relative_connectivity_alpha(10 * X, 0.04, 5.0, 40, 1, random_state=0)
    >>> bool(np.isclose(lam10, 100 * lam))  # scales like the data's variance
    True
    """
    if ratio == 0:
        return 0.0
    X, n_components = _check_rule_inputs(X, n_components, group_size)
    sub, D = reference_sample(X, AUTO_SUBSAMPLE, n_components, check_random_state(random_state))
    return connectivity_from_codes(rough_codes(sub, D, alpha, group_size, positive, n_jobs),
                                   alpha, ratio)
