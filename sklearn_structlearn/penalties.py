"""The "auto" penalties: one rule per penalty, shared by every estimator.

Each rule is one function with one documented target:

- :func:`auto_alpha`, the code penalty: the ``alpha`` at which *reference atoms*
  (normalised random rows of the data) activate ``AUTO_ACTIVE_FRACTION`` of the groups
  on a random subsample;
- :func:`auto_connectivity_alpha`, the connectivity penalty: ``AUTO_CONNECTIVITY_RATIO``
  times the code cost of the median unit on those reference atoms.

:class:`~sklearn_structlearn.GroupSparseCodingLayer` applies them when ``alpha="auto"`` /
``connectivity_alpha="auto"``; :class:`~sklearn_structlearn.DeepStructureLearner` passes
"auto" on to its layers, so a layer resolves the same penalties alone or inside the
learner. :func:`auto_penalties` gives both for given data (the two rules on one
subsample). Changing a rule is a change of one function here.

Why these targets. A much sparser code (few active groups) makes whole-image templates,
which the connectivity penalty then kills; a denser one is no longer a sparse code. For
the connectivity penalty: rescaling an atom ``D_k`` by ``s <= 1`` (and its codes by
``1 / s``) leaves the reconstruction unchanged, lowers the connectivity cost
``connectivity_alpha * ||D_k||_1`` by ``s`` and raises the code cost, about
``alpha * mean_i |A_ik|``, by ``1 / s``. A unit whose connections cost more than its codes
therefore shrinks, is used less, and dies. Tying the connectivity penalty to the code cost
of the typical unit keeps a typical unit with ``||D_k||_1`` below
``1 / AUTO_CONNECTIVITY_RATIO`` (about ``1 / AUTO_CONNECTIVITY_RATIO**2`` inputs of equal
weight) out of that spiral, whatever the number of inputs and the scale of the data (both
penalties scale like the data: ``alpha`` like its scale, ``connectivity_alpha`` like its
variance), while pruning the weak connections: on images the surviving ones are local.
The measurements behind the two constants are on the results page of the documentation.

Both rules measure on reference atoms rather than on a layer's own initial dictionary,
so the penalties depend on the data (and, for the connectivity, on ``alpha``) only, not
on how a layer initialises its atoms.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array, check_random_state

from ._groups import group_norms
from ._param_validation import N_JOBS, int_in, real_in, validate_params
from ._sparse import ACCEPT_SPARSE
from ._threads import thread_limits
from ._validation import check_magnitude, check_numeric_dtype
from .encoding import solve_codes_any
from .objective import alpha_max

__all__ = [
    "AUTO_ACTIVE_FRACTION",
    "AUTO_CONNECTIVITY_RATIO",
    "AUTO_SUBSAMPLE",
    "auto_alpha",
    "auto_connectivity_alpha",
    "auto_penalties",
]

#: Target of the "auto" code penalty: the fraction of the groups that reference atoms
#: activate. Dense enough that an input is explained by several local parts rather than
#: by one global template -- the regime in which the connectivity penalty can make the
#: units local without killing them (measured on Fashion-MNIST, digits and natural
#: patches; see the results page).
AUTO_ACTIVE_FRACTION = 0.25
#: Target of the "auto" connectivity penalty: its ratio to the code cost of the median
#: unit. Measured on Fashion-MNIST, digits and natural patches (ZCA-whitened): local
#: receptive fields with more than 95% of the units alive.
AUTO_CONNECTIVITY_RATIO = 0.13
#: Rows of the subsample on which the reference codes are computed.
AUTO_SUBSAMPLE = 512
# precision of the bisection of the code penalty: 12 halvings of [1e-4, 1] * alpha_max
_N_HALVINGS = 12


def default_n_components(n_features, group_size):
    """Units of a layer with ``n_components=None``: ``n_features`` rounded up to groups."""
    return -(-n_features // group_size) * group_size


def _check_rule_inputs(X, n_components, group_size):
    check_numeric_dtype(X, "X")
    X = check_array(X, dtype=[np.float64, np.float32], accept_sparse=ACCEPT_SPARSE)
    check_magnitude(X, "X")
    if n_components is None:
        n_components = default_n_components(X.shape[1], group_size)
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


def _alpha_on_reference(sub, D, group_size, positive, active_fraction, n_jobs):
    """The code penalty activating ``active_fraction`` of the groups of ``D`` on ``sub``.

    None when ``sub`` is all zeros (every penalty gives zero codes). The fraction is
    capped so that no more units are active on average than half the inputs: beyond
    that the code problem is nearly singular (as many active atoms as dimensions), slow
    and not sparse.
    """
    n_components, n_features = D.shape
    active_fraction = min(active_fraction, 0.5 * n_features / n_components)
    high = float(alpha_max(sub, D, group_size, positive))
    if high <= 0:
        return None

    def too_dense(penalty):
        codes = rough_codes(sub, D, penalty, group_size, positive, n_jobs)
        return (group_norms(codes, group_size) > 0).mean() > active_fraction

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
        Ratio to the typical code cost (``None``: ``AUTO_CONNECTIVITY_RATIO``, 0.13).

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

    Target: reference atoms (``n_components`` normalised random rows of ``X``) activate
    ``AUTO_ACTIVE_FRACTION`` (25%) of their groups on a random subsample of
    ``AUTO_SUBSAMPLE`` other rows, or fewer when that would make more units active on
    average than half the inputs. Found by bracketing down from ``alpha_max`` and a
    bisection in log scale (:func:`alpha_for_active_fraction`).

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Inputs of the layer (already checked by the caller: finite floats).
    n_components : int or None
        Units of the layer (``None``: ``n_features`` rounded up to a multiple of
        ``group_size``).
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
    alpha = _alpha_on_reference(sub, D, group_size, positive, AUTO_ACTIVE_FRACTION, n_jobs)
    return 1.0 if alpha is None else alpha


@validate_params({**_RULE_PARAMS, "alpha": [real_in(0)]}, prefer_skip_nested_validation=True)
def auto_connectivity_alpha(X, alpha, n_components, group_size, *, positive=False,
                            random_state=None, n_jobs=None):
    """The "auto" connectivity penalty of a layer fitted on ``X`` with code penalty ``alpha``.

    Target: ``AUTO_CONNECTIVITY_RATIO`` (0.13) times the code cost of the median unit,
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
        Units of the layer (``None``: ``n_features`` rounded up to a multiple of
        ``group_size``).
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
    X, n_components = _check_rule_inputs(X, n_components, group_size)
    sub, D = reference_sample(X, AUTO_SUBSAMPLE, n_components, check_random_state(random_state))
    return connectivity_from_codes(rough_codes(sub, D, alpha, group_size, positive, n_jobs),
                                   alpha)


@validate_params(
    {
        **_RULE_PARAMS,
        "alpha": [real_in(0), None],
        "active_fraction": [real_in(0, 1, closed="right"), None],
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
    active_fraction=None,
    connectivity_ratio=None,
    n_subsample=AUTO_SUBSAMPLE,
    random_state=None,
    n_jobs=None,
):
    """Both "auto" penalties of a layer fitted on ``X``, measured on one subsample.

    On a subsample, reference atoms are drawn from normalised random rows
    (:func:`reference_sample`), then

    - ``alpha`` is the code penalty at which these atoms activate ``active_fraction`` of
      the groups (the target of :func:`auto_alpha`), unless it is given;
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
        Units of the layer (None: ``n_features`` rounded up to a multiple of
        ``group_size``).
    group_size : int
        Units per group.
    positive : bool, default=False
        Non-negative codes.
    alpha : float, default=None
        Code penalty to use instead of resolving it.
    active_fraction : float, default=None
        Target fraction of active groups (None: ``AUTO_ACTIVE_FRACTION``).
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
    if active_fraction is None:
        active_fraction = AUTO_ACTIVE_FRACTION
    X, n_components = _check_rule_inputs(X, n_components, group_size)
    sub, D = reference_sample(X, n_subsample, n_components, check_random_state(random_state))
    if alpha is None:
        alpha = _alpha_on_reference(sub, D, group_size, positive, active_fraction, n_jobs)
        if alpha is None:
            return 1.0, 0.0
    codes = rough_codes(sub, D, alpha, group_size, positive, n_jobs)
    return float(alpha), connectivity_from_codes(codes, alpha, connectivity_ratio)
