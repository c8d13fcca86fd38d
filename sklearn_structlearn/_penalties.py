"""The "auto" connectivity penalty: one rule for the layer and the deep learner.

Rescaling an atom ``D_k`` by ``s <= 1`` (and its codes by ``1 / s``) leaves the
reconstruction unchanged, lowers the connectivity cost ``connectivity_alpha *
||D_k||_1`` by ``s`` and raises the code cost, about ``alpha * mean_i |A_ik|``, by
``1 / s``. A unit whose connections cost more than its codes therefore shrinks, is used
less, and dies. Tying the connectivity penalty to the code cost of the typical unit,

    connectivity_alpha = AUTO_CONNECTIVITY_RATIO * alpha * median_k mean_i |A_ik|,

keeps a typical unit with ``||D_k||_1`` below ``1 / AUTO_CONNECTIVITY_RATIO`` (about
``1 / AUTO_CONNECTIVITY_RATIO**2`` inputs of equal weight) out of that spiral, whatever
the number of inputs and the scale of the data (both penalties scale like the data's
variance), while pruning the weak connections: on images the surviving ones are local.

``A`` are the codes, at the layer's code penalty, of a random subsample on *reference
atoms* (normalised random rows): the penalty then depends on the data and ``alpha``
only, not on how a layer initialises its own dictionary.
:class:`~sklearn_structlearn.GroupSparseCodingLayer` (``connectivity_alpha="auto"``),
:class:`~sklearn_structlearn.DeepStructureLearner` and
:func:`~sklearn_structlearn.deep.auto_penalties` all use :func:`auto_connectivity_alpha`.
"""

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

# Measured on Fashion-MNIST, digits and natural patches (ZCA-whitened): local receptive
# fields with more than 95% of the units alive (see DeepStructureLearner's Notes).
AUTO_CONNECTIVITY_RATIO = 0.13
# rows of the subsample on which the reference codes are computed
AUTO_SUBSAMPLE = 512


def normalised_atoms(rows, rng):
    """Rows as unit-norm atoms, jittered (1% of their RMS) so that duplicates differ."""
    D = np.asarray(rows.toarray() if sp.issparse(rows) else rows, dtype=np.float64)
    scale = np.sqrt(np.mean(D**2)) if np.any(D) else 1.0
    D = D + 0.01 * scale * rng.standard_normal(D.shape)
    norms = np.linalg.norm(D, axis=1, keepdims=True)
    return D / np.where(norms > 0, norms, 1.0)


def subsample_and_reference_atoms(X, n_subsample, n_components, rng):
    """A random subsample of ``X`` and reference atoms drawn from *other* rows.

    The reference atoms on which the "auto" penalties are measured are normalised random
    rows: they depend on the data only, not on how a layer initialises its own dictionary
    (which may, e.g., seed the atoms of a group from near-identical samples and so split
    their codes). They are drawn from rows outside the coded subsample whenever at least a
    quarter of the rows (and 2) remain to be coded: a row coded on its own (jittered) copy
    needs that single atom only, so with as many atoms as subsample rows the penalty that
    activates a target fraction of the groups collapsed by ~100x (512 units: alpha 0.0075
    instead of ~0.6, and codes so dense that a layer fit took minutes per iteration).

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
    >>> from sklearn_structlearn._penalties import alpha_for_active_fraction
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


def rough_codes(sub, D, alpha, group_size, positive=False, n_jobs=None):
    """Codes of ``sub`` on ``D`` to a loose tolerance: enough for statistics.

    Internal statistics, so the solver's warnings are not the user's business: a loose
    solve is meant, and all-zero codes (alpha near alpha_max of the reference atoms) are a
    valid measurement, not a mistake of the user's alpha.
    """
    from .exceptions import ZeroCodesWarning
    from .layer import group_sparse_encode

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", ZeroCodesWarning)
        return group_sparse_encode(sub, D, alpha=alpha, group_size=group_size,
                                   positive=positive, max_iter=200, tol=1e-3, n_jobs=n_jobs)


def auto_connectivity_alpha(X, alpha, n_components, group_size, *, positive=False,
                            ratio=None, n_subsample=AUTO_SUBSAMPLE, random_state=None,
                            n_jobs=None):
    """The "auto" connectivity penalty of a layer fitted on ``X`` with code penalty ``alpha``.

    On a random subsample, codes ``A`` at ``alpha`` on reference atoms (normalised random
    rows, :func:`subsample_and_reference_atoms`) give the penalty
    ``ratio * alpha * median_k mean_i |A_ik|`` (:func:`connectivity_from_codes`).

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Inputs of the layer.
    alpha : float
        Code penalty of the layer.
    n_components, group_size : int
        Units of the layer and units per group.
    positive : bool, default=False
        Non-negative codes.
    ratio : float, default=None
        Ratio to the typical code cost (``None``: ``AUTO_CONNECTIVITY_RATIO``, 0.13).
    n_subsample : int, default=512
        Rows used.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsample and the reference atoms.
    n_jobs : int, default=None
        Threads of the code solver.

    Returns
    -------
    connectivity_alpha : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn._penalties import auto_connectivity_alpha
    >>> X = np.random.RandomState(0).standard_normal((300, 20))
    >>> lam = auto_connectivity_alpha(X, 1.0, 16, 2, random_state=0)
    >>> lam10 = auto_connectivity_alpha(10 * X, 10.0, 16, 2, random_state=0)
    >>> bool(np.isclose(lam10, 100 * lam))  # scales like the data's variance
    True
    """
    rng = check_random_state(random_state)
    sub, D = subsample_and_reference_atoms(X, n_subsample, n_components, rng)
    return connectivity_from_codes(rough_codes(sub, D, alpha, group_size, positive, n_jobs),
                                   alpha, ratio)


def connectivity_from_codes(codes, alpha, ratio=None):
    """Connectivity penalty scaled to the code cost of the median unit.

    Parameters
    ----------
    codes : ndarray of shape (n_samples, n_components)
        Codes of reference atoms (:func:`subsample_and_reference_atoms`) at ``alpha``.
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
    >>> from sklearn_structlearn._penalties import connectivity_from_codes
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
