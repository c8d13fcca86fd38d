"""One layer of the network: group sparse coding with a connectivity penalty.

``GroupSparseCodingLayer`` learns the dictionary (the units' input weights) by alternating
the code solver (:func:`~sklearn_structlearn.group_sparse_encode`, in ``encoding.py``)
with block coordinate descent on the atoms. The objective they minimise is written out in
``objective.py``, the "auto" penalties in ``penalties.py``, the kernels are in
``_solvers/``. This module only validates, schedules and reports.
"""

import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._groups import (
    TRANSFORM_ALGORITHMS,
    group_norms,
    input_group_pointers,
    pool_codes,
    threshold_codes,
)
from ._grouping import neighbour_groups, regroup_units
from ._param_validation import (
    N_JOBS,
    StrOptions,
    fit_context,
    int_in,
    real_in,
    validate_named,
)
from ._progress import Progress, write_line
from ._solvers._dictionary import update_dictionary
from ._sparse import ACCEPT_SPARSE, as_rows, code_statistics, dense_rows, total_sqnorm
from ._threads import thread_limits
from ._validation import check_magnitude, check_memory, check_numeric_dtype, format_bytes
from .encoding import group_sparse_encode, solve_codes_any, warn_all_zero, warn_unconverged
from .objective import connectivity_penalty
from .penalties import (
    auto_alpha,
    auto_connectivity_alpha,
    auto_n_components,
    normalised_atoms,
    relative_alpha,
    relative_connectivity_alpha,
)

# ``group_sparse_encode`` lives in ``encoding.py``; imported here so that
# ``from sklearn_structlearn.layer import group_sparse_encode`` keeps working.
__all__ = ["GroupSparseCodingLayer", "group_sparse_encode"]

# forgetting schedule of partial_fit: batch t gets weight t ** -ONLINE_FORGET_EXPONENT in the
# running averages of the sufficient statistics (1 would be a plain average of all batches;
# smaller values forget codes computed with older dictionaries faster).
ONLINE_FORGET_EXPONENT = 0.8
# warnings of the fit loops point at the caller of fit: the loop, fit, fit_context's
# wrapper, the caller
_FIT_STACKLEVEL = 4
# the pooling options of the layers (and of the deep learner, which passes it on)
POOLING = [StrOptions({"l2", "max"}), None]
# "auto" or a float >= 0: the two penalties
PENALTY = [real_in(0), StrOptions({"auto"})]
# how a numeric penalty is read (see penalties.relative_alpha, relative_connectivity_alpha)
PENALTY_SCALE = [StrOptions({"absolute", "relative"})]
# how transform codes new rows (see GroupSparseCodingLayer's docstring)
TRANSFORM_ALGORITHM = [StrOptions(set(TRANSFORM_ALGORITHMS))]


def check_fit_memory(n_rows, n_features, n_components, itemsize, who):
    """Refuse, before any work, a layer that cannot be fitted in this machine's memory.

    A lower bound of what a fit holds at once: the Gram matrix ``D D^T`` of the code
    solver and the running ``A^T A`` (``n_components^2`` float64 each), the dictionary and
    the running ``A^T X`` (``n_components x n_features`` float64 each), and the
    correlations ``X D^T`` and the codes of the rows coded at once (``n_rows x
    n_components`` each, in the data's dtype). ``who`` names the parameter and its value.
    """
    gram = 8 * n_components**2
    needed = 2 * gram + 16 * n_components * n_features + 2 * n_rows * n_components * itemsize
    check_memory(
        needed,
        f"{who}: {n_components} units on {n_features} inputs, coding {n_rows} rows at once "
        f"(the {n_components} x {n_components} Gram matrix alone is {format_bytes(gram)}),",
        "use fewer units (n_components), or code fewer rows at once (batch_size, smaller "
        "batches).",
    )


class GroupSparseCodingLayer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """A layer of units learned by group sparse coding, with learned connectivity.

    Learns a dictionary ``D`` (one row of input weights per unit) and group-sparse codes
    ``A`` minimising (see :mod:`sklearn_structlearn.objective`)::

        1/n sum_i [ 1/2 ||x_i - D^T a_i||^2 + alpha sum_g ||a_{i,g}||_2 ]
            + connectivity_alpha * sum_k sum_h ||D_{k,h}||_2      s.t. ||D_k||_2 <= 1

    Units come in contiguous groups of ``group_size`` that switch on together; pooling a
    group (the norm of its codes) gives outputs invariant to what varies inside the group.
    The connectivity penalty prunes each unit's input weights over the input groups ``h``;
    the surviving weights are the layer's connectivity (``connectivity_``).

    Fitting alternates the code solver (:func:`group_sparse_encode`, warm-started) with exact
    block coordinate descent on the atoms over the sufficient statistics ``A^T A`` and
    ``A^T X``, so the objective never increases (except when a dead unit is re-seeded,
    which ``n_reseeded_`` records). ``partial_fit`` (or ``batch_size``) runs the same
    updates online over mini-batches with running averages of the statistics, in memory
    independent of the number of samples.

    Which units pool together is learned too (``group_size > 1``): each group starts
    from a sample and its nearest samples, and the full-batch fit moves units between
    groups so that units active together share a group (a permutation of the units
    that lowers the group penalty of the current codes, so still a descent step; see
    ``sklearn_structlearn._grouping``).

    Parameters
    ----------
    n_components : int, default=None
        Number of units. ``None``: the "auto" width
        (:func:`~sklearn_structlearn.penalties.auto_n_components`), an overcomplete code
        of ``min(8 * n_features, n_samples // 2, 1024)`` units (at least 16), rounded
        down to whole groups; in :meth:`partial_fit` the number of rows is unknown and
        does not cap it. A value below ``group_size`` gives one group of ``group_size``
        units; other values must be a multiple of ``group_size``.
    group_size : int, default=1
        Units per pooling group; must divide ``n_components``. 1 is plain (lasso) sparse
        coding.
    alpha : float or "auto", default="auto"
        Code penalty. ``"auto"`` picks the largest penalty at which the codes of a
        subsample on atoms drawn from the data still explain 90% of its variance (at
        most 48 active units per row on average, a compute budget;
        :func:`~sklearn_structlearn.penalties.auto_alpha`, stored in ``alpha_``). It is
        the package's one rule for this penalty, also used by
        :class:`~sklearn_structlearn.DeepStructureLearner`. A number is read according
        to ``penalty_scale``.
    connectivity_alpha : float or "auto", default="auto"
        Penalty on the units' input weights. ``0`` gives dense units (plain dictionary
        learning). ``"auto"`` scales it to the code cost of the units:
        ``0.04 * alpha_ * median_k mean_i |A_ik|``, ``A`` the codes (at ``alpha_``) of a
        subsample on atoms drawn from the data, so that connections cost a small
        fraction of what a typical unit pays for its codes -- weak connections are
        pruned, units stay alive
        (:func:`~sklearn_structlearn.penalties.auto_connectivity_alpha`, stored in
        ``connectivity_alpha_``). A number is read according to ``penalty_scale``.
    penalty_scale : {"absolute", "relative"}, default="absolute"
        How numeric penalties are read. ``"absolute"``: as they are. ``"relative"``:
        scale free (:func:`~sklearn_structlearn.penalties.relative_alpha`,
        :func:`~sklearn_structlearn.penalties.relative_connectivity_alpha`) --
        ``alpha`` as a fraction of the root-mean-square norm of the input rows (``1``
        gives a row of typical norm all-zero codes on any dictionary, ``0`` no
        penalty), ``connectivity_alpha`` as the ratio to the code cost of the median
        unit (the "auto" rule uses 0.04). Relative values mean the same on data of any
        scale, so ``GridSearchCV`` over ``alpha`` needs no pre-fit. The absolute values
        used are in ``alpha_`` and ``connectivity_alpha_``.
    input_groups : array-like of shape (n_features,), default=None
        Group label of each input; a unit connects to a whole input group or not at all
        (e.g. the channels of a pixel). ``None``: every input is its own group (L1).
    pooling : {"l2", "max"} or None, default="l2"
        What ``transform`` returns: the Euclidean norm of each group's codes, their largest
        absolute value, or (``None``) the raw codes.
    positive_code : bool, default=False
        Constrain the codes to be non-negative.
    max_iter : int, default=100
        Maximum number of outer iterations (full passes over the data when ``batch_size``
        is set).
    tol : float, default=1e-4
        Stop when an outer iteration decreases the objective by less than ``tol`` relative.
    transform_max_iter : int, default=1000
        Maximum iterations of the code solver per sample.
    transform_tol : float, default=1e-6
        Relative duality-gap tolerance of the code solver.
    transform_algorithm : {"lasso", "threshold"}, default="lasso"
        How :meth:`encode` and :meth:`transform` code rows on the learned dictionary.
        ``"lasso"``: the codes that minimise the objective above for the fitted
        dictionary (the group lasso, solved to ``transform_tol``) -- the codes ``fit``
        learns from. ``"threshold"``: one proximal-gradient step from zero codes,
        ``prox(X D^T)``, the group soft-threshold of the correlations with the atoms at
        ``alpha_`` (non-negative with ``positive_code``): a feed-forward encoder, one
        matrix product, denser codes (every atom that matches a row keeps its code;
        Coates & Ng, 2011), the same map as ``to_torch(mode="feedforward")`` before
        training. ``fit`` is the same either way; the parameter may be changed after fit.
        It is :class:`~sklearn_structlearn.DeepStructureLearner`'s default: its outputs
        keep more of the input's information (``benchmarks/RESULTS.md`` section 12).
    batch_size : int, default=None
        ``None``: full-batch alternating minimisation. An int: online updates over
        mini-batches of this size (as ``partial_fit`` does), for large data sets: memory
        then grows with the batch, not with the rows (4,096 units on 60,000 images: 1.4
        GiB and 5 minutes for 4 passes at two threads, against 6 GiB and 30 minutes full
        batch at one; the online dictionary a few percent worse in objective, see
        ``benchmarks/RESULTS.md`` section 11).
    random_state : int, RandomState instance or None, default=None
        Seeds the dictionary initialisation, the subsamples and the batch order.
    n_jobs : int, default=None
        Threads for the solvers; ``None`` uses all cores available to Numba.
    verbose : int, default=0
        Print progress (objective, sparsity, time) every outer iteration when > 0; with
        tqdm installed, also a bar with the time left, on a terminal or in Jupyter only.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features_in)
        The dictionary: row ``k`` holds unit ``k``'s input weights (``||D_k|| <= 1``).
    connectivity_ : ndarray of bool of shape (n_components, n_features_in)
        Which unit connects to which input (``components_ != 0``).
    alpha_ : float
        The code penalty used.
    connectivity_alpha_ : float
        The connectivity penalty used.
    n_groups_ : int
        Number of groups (``n_components_ // group_size``).
    n_components_ : int
        Number of units.
    n_iter_ : int
        Outer iterations run (or batches seen, online).
    objective_history_ : list of float
        Objective after every outer iteration (the surrogate objective, online).
    n_reseeded_ : list of int
        Number of dead units re-seeded from the data at each outer iteration.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    group_sparse_encode : the code solver.
    sklearn.decomposition.MiniBatchDictionaryLearning : dictionary learning without groups
        or connectivity penalty.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_structlearn import GroupSparseCodingLayer
    >>> X = load_digits().data / 16.0
    >>> layer = GroupSparseCodingLayer(n_components=32, group_size=2, random_state=0)
    >>> Z = layer.fit_transform(X)
    >>> Z.shape
    (1797, 16)
    >>> layer.connectivity_.shape
    (32, 64)
    >>> bool(layer.connectivity_.mean() < 1.0)  # units connect to a subset of the pixels
    True
    """

    _parameter_constraints = {
        "n_components": [int_in(1), None],
        "group_size": [int_in(1)],
        "alpha": PENALTY,
        "connectivity_alpha": PENALTY,
        "penalty_scale": PENALTY_SCALE,
        "input_groups": ["array-like", None],
        "pooling": POOLING,
        "positive_code": ["boolean"],
        "max_iter": [int_in(1)],
        "tol": [real_in(0)],
        "transform_max_iter": [int_in(1)],
        "transform_tol": [real_in(0)],
        "transform_algorithm": TRANSFORM_ALGORITHM,
        "batch_size": [int_in(1), None],
        "random_state": ["random_state"],
        "n_jobs": N_JOBS,
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=None,
        *,
        group_size=1,
        alpha="auto",
        connectivity_alpha="auto",
        penalty_scale="absolute",
        input_groups=None,
        pooling="l2",
        positive_code=False,
        max_iter=100,
        tol=1e-4,
        transform_max_iter=1000,
        transform_tol=1e-6,
        transform_algorithm="lasso",
        batch_size=None,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.group_size = group_size
        self.alpha = alpha
        self.connectivity_alpha = connectivity_alpha
        self.penalty_scale = penalty_scale
        self.input_groups = input_groups
        self.pooling = pooling
        self.positive_code = positive_code
        self.max_iter = max_iter
        self.tol = tol
        self.transform_max_iter = transform_max_iter
        self.transform_tol = transform_tol
        self.transform_algorithm = transform_algorithm
        self.batch_size = batch_size
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = True
        return tags

    @property
    def _n_features_out(self):
        self._check_transform_params()
        return self.n_groups_ if self.pooling is not None else self.n_components_

    # parameters read after fit (set_params on a fitted layer is allowed for them)
    _TRANSFORM_PARAMS = ("group_size", "pooling", "positive_code", "transform_max_iter",
                         "transform_tol", "transform_algorithm", "n_jobs")

    def _check_transform_params(self):
        """Re-check the parameters read after fit, as ``fit`` checks them.

        ``set_params`` may change them on a fitted layer (a new ``pooling``, a tighter
        ``transform_tol``...), so they are validated whenever they are read. A
        ``group_size`` other than the fitted one is refused: the groups are part of
        the learned dictionary.
        """
        check_is_fitted(self)
        validate_named({name: self._parameter_constraints[name]
                        for name in self._TRANSFORM_PARAMS},
                       {name: getattr(self, name) for name in self._TRANSFORM_PARAMS},
                       type(self).__name__)
        fitted = self.n_components_ // self.n_groups_
        if self.group_size != fitted:
            raise ValueError(
                f"group_size={self.group_size} was set after fit, but the layer was "
                f"fitted with group_size={fitted}: its groups are part of the learned "
                "dictionary. Fit the layer again to change them."
            )

    # ------------------------------------------------------------------ helpers
    def _encode(self, X, init=None):
        codes, _, gaps, primals = solve_codes_any(
            X,
            self._dictionary_as(X.dtype),
            self.alpha_,
            self.group_size,
            self.positive_code,
            init,
            self.transform_max_iter,
            self.transform_tol,
        )
        warn_unconverged(gaps, primals, self.transform_tol, self.transform_max_iter,
                         type(self).__name__)
        return codes, primals

    def _dictionary_as(self, dtype):
        return self.components_.astype(dtype, copy=False)

    def _log(self, message):
        if self.verbose:
            write_line(f"[{type(self).__name__}] {message}")

    def _init_dictionary(self, X, rng, n_components):
        """Atoms from rows of X (normalised), jittered so duplicates differ.

        With ``group_size == 1`` the rows are random. With groups, each group starts
        from a random seed row and its ``group_size - 1`` nearest rows (largest
        ``|cosine|``, on a subsample): rows that look alike are the ones the same few
        causes explain, so the group starts inside one co-active subspace instead of
        mixing unrelated ones -- which the group penalty alone cannot undo later (it
        would have to move every atom of the group at once).
        """
        n_samples, n_features = X.shape
        if self.group_size == 1:
            rows = rng.choice(n_samples, size=n_components, replace=n_samples < n_components)
        else:
            rows = neighbour_groups(X, n_components // self.group_size, self.group_size, rng)
        return normalised_atoms(dense_rows(X, rows), rng)

    def _resolve_connectivity(self, X, rng):
        """``connectivity_alpha_``, the "auto" rule (``penalties.py``) applied on first use.

        Resolved at the first dictionary update rather than in :meth:`_start`, on the data
        of that update (the first batch, online), after the first codes.
        """
        if self.connectivity_alpha_ is None and self.connectivity_alpha != "auto":
            self.connectivity_alpha_ = relative_connectivity_alpha(
                X, float(self.connectivity_alpha), self.alpha_, self.n_components_,
                self.group_size, positive=self.positive_code, random_state=rng,
                n_jobs=self.n_jobs)
        if self.connectivity_alpha_ is None:
            self.connectivity_alpha_ = auto_connectivity_alpha(
                X, self.alpha_, self.n_components_, self.group_size,
                positive=self.positive_code, random_state=rng, n_jobs=self.n_jobs)
        return self.connectivity_alpha_

    def _reseed_dead(self, X, codes, D, rng, allowed, unused=None):
        """Replace unused units by the normalised residual of badly reconstructed samples.

        Each unit is re-seeded at most once: a unit that dies again is one the objective
        does not want (its connections cost more than it explains), and re-seeding it over
        and over would only churn.
        """
        if unused is None:
            unused = ~np.any(codes != 0, axis=0)
        dead = (unused | ~np.any(D != 0, axis=1)) & ~self._reseeded_units
        n_dead = int(dead.sum())
        if not allowed or n_dead == 0:
            return D, 0
        sub = rng.choice(X.shape[0], size=min(X.shape[0], 1024), replace=False)
        residual = dense_rows(X, sub) - codes[sub] @ D.astype(X.dtype)
        err = np.einsum("ij,ij->i", residual, residual)
        picks = sub[np.argsort(err)[::-1][:n_dead]] if err.max() > 0 else sub[:n_dead]
        picks = np.resize(picks, n_dead)
        new = np.asarray(dense_rows(X, picks) - codes[picks] @ D.astype(X.dtype),
                         dtype=np.float64)
        new += 1e-3 * (np.abs(new).max() or 1.0) * rng.standard_normal(new.shape)
        new /= np.linalg.norm(new, axis=1, keepdims=True)
        D = D.copy()
        D[dead] = new
        self._reseeded_units |= dead
        return D, n_dead

    def _surrogate(self, B, E, xsq_mean, penalty_mean, D):
        """Layer objective from the sufficient statistics (exact for full-batch fits)."""
        quad = xsq_mean - 2 * np.vdot(E, D) + np.vdot(B, D @ D.T)
        return float(0.5 * quad + self.alpha_ * penalty_mean
                     + self.connectivity_alpha_ * connectivity_penalty(D, self.input_groups))

    # ------------------------------------------------------------------ fitting
    def _start(self, X, rng, n_samples=None):
        """Check what the declared constraints cannot, and set the whole fitted state.

        Every attribute a fit creates is set here, at the start of :meth:`fit` and of the
        first :meth:`partial_fit`: the learned ones, and the private state of the fit --
        the input groups of the dictionary kernel, the units already re-seeded once and
        the running statistics of the online updates. ``connectivity_alpha_`` is None
        until its "auto" (or relative) rule is applied (:meth:`_resolve_connectivity`).
        ``n_samples`` caps the "auto" width (None: unknown, online).
        """
        n_features = X.shape[1]
        group_size = self.group_size
        n_components = self.n_components
        if n_components is None:
            n_components = auto_n_components(n_features, n_samples, group_size)
        # a layer has at least one whole group (scikit-learn's common checks set
        # n_components=1 whatever the group size)
        n_components = max(n_components, group_size)
        if n_components % group_size:
            raise ValueError(
                f"n_components={n_components} must be a multiple of group_size={group_size}."
            )
        n_rows = X.shape[0] if self.batch_size is None else min(X.shape[0], self.batch_size)
        check_fit_memory(n_rows, n_features, int(n_components), X.dtype.itemsize,
                         f"{type(self).__name__}(n_components={self.n_components!r})")
        self._order, self._ptr = input_group_pointers(self.input_groups, n_features)
        self.n_components_ = int(n_components)
        self.n_groups_ = self.n_components_ // group_size
        D = self._init_dictionary(X, rng, self.n_components_)
        relative = self.penalty_scale == "relative"
        if self.alpha == "auto":
            self.alpha_ = auto_alpha(X, self.n_components_, group_size,
                                     positive=self.positive_code, random_state=rng,
                                     n_jobs=self.n_jobs)
        elif relative:
            self.alpha_ = relative_alpha(X, float(self.alpha))
        else:
            self.alpha_ = float(self.alpha)
        # resolved at the first dictionary update when "auto" or relative
        self.connectivity_alpha_ = (None if self.connectivity_alpha == "auto" or relative
                                    else float(self.connectivity_alpha))
        self.components_ = D
        self.connectivity_ = D != 0
        self.objective_history_ = []
        self.n_reseeded_ = []
        self.n_iter_ = 0
        self._reseeded_units = np.zeros(self.n_components_, dtype=bool)
        # running averages of partial_fit (see its Notes): A^T A, A^T X, mean ||x||^2 and
        # mean code penalty, over the batches seen so far
        self._stats = {"B": np.zeros((self.n_components_, self.n_components_)),
                       "E": np.zeros((self.n_components_, n_features)), "xsq": 0.0, "pen": 0.0}
        self._n_batches = 0

    @fit_context
    def fit(self, X, y=None):
        """Learn the dictionary (units' input weights) from ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : GroupSparseCodingLayer
            The fitted layer.
        """
        check_numeric_dtype(X, "X")
        X = as_rows(validate_data(self, X, dtype=[np.float64, np.float32],
                                  accept_sparse=ACCEPT_SPARSE))
        check_magnitude(X, "X")
        rng = check_random_state(self.random_state)
        with thread_limits(self.n_jobs):
            self._start(X, rng, n_samples=X.shape[0])
            # a later partial_fit starts its own stream from random_state, as on a new layer
            self._rng = check_random_state(self.random_state)
            if self.batch_size is None:
                self._fit_full_batch(X, rng)
            else:
                self._fit_online(X, rng)
        return self

    @fit_context
    def fit_transform(self, X, y=None):
        """Fit to ``X`` and return its outputs (``fit(X).transform(X)``).

        Like :meth:`fit`, a transaction: if the call raises or is interrupted, the layer
        is left as it was before it (the transform included).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_groups) or (n_samples, n_components)
            The outputs of :meth:`transform` on ``X``.
        """
        return self.fit(X).transform(X)

    def _fit_full_batch(self, X, rng):
        n = X.shape[0]
        D = self.components_
        codes = None
        xsq_mean = total_sqnorm(X) / n
        previous = np.inf
        converged = False
        start = time.perf_counter()
        # a bar (tqdm installed, verbose >= 1) besides the log lines; closed below
        bar = Progress(self.max_iter, desc=type(self).__name__, verbose=self.verbose,
                       unit="iter")
        for it in range(self.max_iter):
            self.components_ = D
            codes, primals = self._encode(X, init=codes)
            B, E = code_statistics(codes, X)
            B, E = B / n, E / n
            D = update_dictionary(D, B, E, self._resolve_connectivity(X, rng), self._order,
                                  self._ptr)
            norms = group_norms(codes, self.group_size)
            penalty_mean = float(norms.sum() / n)
            objective = self._surrogate(B, E, xsq_mean, penalty_mean, D)
            self.objective_history_.append(objective)
            self.n_iter_ = it + 1
            decrease = (previous - objective) / max(abs(objective), 1e-300)
            self._log(
                f"iter {it + 1}/{self.max_iter} objective {objective:.6e} "
                f"(rel. decrease {decrease:.1e}) active groups "
                f"{(norms > 0).mean():.1%} "
                f"connectivity {(D != 0).mean():.1%} time {time.perf_counter() - start:.2f}s"
            )
            bar.update(objective=objective)
            if 0 <= decrease <= self.tol:
                converged = True
                self.n_reseeded_.append(0)
                break
            previous = objective
            # move units between groups so that co-active units share one: a permutation
            # keeps the reconstruction and the connectivity cost, and only swaps lowering
            # the group penalty of the current codes are made, so this is a descent step
            perm, n_swaps = regroup_units(codes, self.group_size, rng)
            if n_swaps:
                D, codes = D[perm], codes[:, perm]
                self._reseeded_units = self._reseeded_units[perm]
                self._log(f"moved {n_swaps} units to the group they are co-active with")
            # re-seeding only in the first half leaves the second half a monotone descent
            D, n_new = self._reseed_dead(X, codes, D, rng, allowed=it < self.max_iter // 2)
            self.n_reseeded_.append(n_new)
            if n_new:
                previous = np.inf
                self._log(f"re-seeded {n_new} dead units")
        bar.close()
        # the last codes were computed with self.components_ (D may have been re-seeded since)
        warn_all_zero(codes, X, self.components_, self.alpha_, self.group_size,
                      self.positive_code, type(self).__name__, stacklevel=_FIT_STACKLEVEL + 1)
        self.components_ = D
        self._finish()
        if not converged:
            warnings.warn(
                f"GroupSparseCodingLayer did not converge in max_iter={self.max_iter} iterations "
                f"(last relative decrease {decrease:.2e} > tol={self.tol:g}). Increase max_iter "
                "or tol.",
                ConvergenceWarning,
                stacklevel=_FIT_STACKLEVEL,
            )

    def _fit_online(self, X, rng):
        n = X.shape[0]
        previous = np.inf
        converged = False
        start = time.perf_counter()
        bar = Progress(self.max_iter, desc=f"{type(self).__name__} (online)",
                       verbose=self.verbose, unit="epoch")
        for epoch in range(self.max_iter):
            order = rng.permutation(n)
            for lo in range(0, n, self.batch_size):
                self._online_step(X[order[lo:lo + self.batch_size]], rng)
            objective = self.objective_history_[-1]
            decrease = (previous - objective) / max(abs(objective), 1e-300)
            self._log(f"epoch {epoch + 1}/{self.max_iter} surrogate objective {objective:.6e} "
                      f"(rel. decrease {decrease:.1e}) time {time.perf_counter() - start:.2f}s")
            bar.update(objective=objective)
            if abs(decrease) <= self.tol:
                converged = True
                break
            previous = objective
        bar.close()
        # every batch coded to zero (the running A^T A has a zero diagonal): warn, as fit does
        warn_all_zero(np.diag(self._stats["B"])[None, :], X, self.components_, self.alpha_,
                      self.group_size, self.positive_code, type(self).__name__,
                      stacklevel=_FIT_STACKLEVEL + 1)
        if not converged:
            warnings.warn(
                f"GroupSparseCodingLayer (online) did not converge in max_iter={self.max_iter} "
                f"epochs (last relative change {decrease:.2e} > tol={self.tol:g}).",
                ConvergenceWarning,
                stacklevel=_FIT_STACKLEVEL,
            )

    @fit_context
    def partial_fit(self, X, y=None):
        r"""Update the layer with one mini-batch (online dictionary learning).

        The batch is coded on the current dictionary, its sufficient statistics are
        folded into running averages, and every atom takes one block-coordinate step on
        those averages (see Notes). Nothing of the batch itself is kept, so data larger
        than memory can be streamed through the layer batch after batch.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            One mini-batch. A scipy.sparse CSR/CSC batch is not densified (only a few of
            its rows, to initialise or re-seed units).
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : GroupSparseCodingLayer
            The updated layer.

        Notes
        -----
        **Forgetting schedule.** With ``A_t`` the codes of batch ``t`` (of ``m_t`` rows
        ``X_t``), the layer keeps

        .. math::

            B_t = (1 - w_t) B_{t-1} + w_t A_t^T A_t / m_t, \qquad
            E_t = (1 - w_t) E_{t-1} + w_t A_t^T X_t / m_t, \qquad
            w_t = t^{-0.8}

        (``ONLINE_FORGET_EXPONENT = 0.8``; ``w_1 = 1``, so the first batch sets the
        statistics), and likewise the mean squared norm of the rows and the mean code
        penalty, which give the surrogate objective recorded in
        ``objective_history_``. An exponent of 1 would weigh every batch equally (a
        plain average); below 1 the codes computed with older, worse dictionaries fade
        out: batch ``s`` keeps weight about ``w_s * exp(-5 (t^0.2 - s^0.2))`` at batch
        ``t``: a decaying-weight running average in the spirit of online dictionary
        learning (Mairal et al., JMLR 2010). The weight does not depend on the batch
        size, so keep batches of similar sizes.

        **Memory** is ``O(n_components * (n_components + n_features))`` (``B``, ``E`` and
        the dictionary), whatever the number of rows seen; ``objective_history_`` and
        ``n_reseeded_`` grow by one number per *batch*, not per row.

        **Continuing.** ``partial_fit`` on a layer fitted by :meth:`fit` continues from
        its dictionary (the statistics restart from that batch). Dead units are
        re-seeded from badly reconstructed rows during the first 10 batches only.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_structlearn import GroupSparseCodingLayer
        >>> rng = np.random.default_rng(0)
        >>> layer = GroupSparseCodingLayer(n_components=8, group_size=2, alpha=0.5,
        ...                                random_state=0)
        >>> for _ in range(5):  # e.g. batches read from disk one at a time
        ...     layer = layer.partial_fit(rng.standard_normal((100, 20)))
        >>> layer.n_iter_, layer.components_.shape
        (5, (8, 20))
        """
        # a layer fitted by fit() is continued from, as MiniBatchDictionaryLearning is
        first = not hasattr(self, "components_")
        check_numeric_dtype(X, "X")
        X = as_rows(validate_data(self, X, dtype=[np.float64, np.float32], reset=first,
                                  accept_sparse=ACCEPT_SPARSE))
        check_magnitude(X, "X")
        with thread_limits(self.n_jobs):
            if first:
                self._rng = check_random_state(self.random_state)
                self._start(X, self._rng)
            self._online_step(X, self._rng)
        return self

    def _online_step(self, X, rng):
        m = X.shape[0]
        codes, _ = self._encode(X)
        B, E = code_statistics(codes, X)
        self._n_batches += 1
        weight = self._n_batches ** -ONLINE_FORGET_EXPONENT
        stats = self._stats
        stats["B"] += weight * (B / m - stats["B"])
        stats["E"] += weight * (E / m - stats["E"])
        stats["xsq"] += weight * (total_sqnorm(X) / m - stats["xsq"])
        stats["pen"] += weight * (float(group_norms(codes, self.group_size).sum()) / m
                                  - stats["pen"])
        D = update_dictionary(self.components_, stats["B"], stats["E"],
                              self._resolve_connectivity(X, rng), self._order, self._ptr,
                              n_passes=1)
        # online, "unused" is judged on the accumulated statistics, not on one small batch
        D, n_new = self._reseed_dead(X, codes, D, rng, allowed=self._n_batches <= 10,
                                     unused=np.diag(stats["B"]) <= 0)
        self.components_ = D
        self.n_reseeded_.append(n_new)
        self.objective_history_.append(
            self._surrogate(stats["B"], stats["E"], stats["xsq"], stats["pen"], D))
        self.n_iter_ += 1
        self._finish()

    def _finish(self):
        self.connectivity_ = self.components_ != 0

    # ------------------------------------------------------------------ transforming
    def encode(self, X):
        """Raw (unpooled) group-sparse codes of ``X`` on the learned dictionary.

        Computed as ``transform_algorithm`` says: the objective's codes (``"lasso"``) or
        one proximal step from zero (``"threshold"``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_components)
            Codes, of the dtype of ``X`` (float32 or float64).
        """
        self._check_transform_params()
        check_numeric_dtype(X, "X")
        X = as_rows(validate_data(self, X, dtype=[np.float64, np.float32], reset=False,
                                  accept_sparse=ACCEPT_SPARSE))
        check_magnitude(X, "X")
        with thread_limits(self.n_jobs):
            if self.transform_algorithm == "threshold":
                return threshold_codes(X, self._dictionary_as(X.dtype), self.alpha_,
                                       self.group_size, self.positive_code)
            return self._encode(X)[0]

    def transform(self, X):
        """Pooled group outputs of ``X`` (raw codes when ``pooling=None``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_groups) or (n_samples, n_components)
            ``||a_g||_2`` per group (``pooling="l2"``), ``max_j |a_j|`` per group
            (``pooling="max"``) or the codes (``pooling=None``).
        """
        # encode checks the parameters first: set_params(pooling=...) after fit is allowed
        return pool_codes(self.encode(X), self.group_size, self.pooling)

    def inverse_transform(self, X):
        """Reconstruct inputs from raw codes: ``codes @ components_``.

        Pooled outputs lose the within-group pattern and cannot be inverted; pass the raw
        codes from :meth:`encode` (or use ``pooling=None``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Raw codes.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in)
            Reconstruction, of the dtype of the codes.
        """
        check_is_fitted(self)
        check_numeric_dtype(X, "X")
        codes = check_array(X, dtype=[np.float64, np.float32], input_name="X")
        if codes.shape[1] != self.n_components_:
            raise ValueError(
                f"inverse_transform expects raw codes with n_components_={self.n_components_} "
                f"columns, got {codes.shape[1]}; pooled outputs cannot be inverted, use "
                "encode(X) to get codes."
            )
        return codes @ self._dictionary_as(codes.dtype)

    def to_torch(self, mode="exact", n_classes=None, n_iter=None, dtype=None):
        """Export the fitted layer as a ``torch.nn.Module`` (needs the ``torch`` extra).

        Parameters
        ----------
        mode : {"exact", "feedforward"}, default="exact"
            ``"exact"`` reproduces :meth:`transform` with ``n_iter`` unrolled accelerated
            proximal-gradient iterations on the learned dictionary (masks applied);
            ``"feedforward"`` is a fast masked encoder with a learnable group threshold,
            meant to be fine-tuned with labels.
        n_classes : int, default=None
            Adds a linear classification head with this many outputs.
        n_iter : int, default=None
            Unrolled iterations in ``"exact"`` mode (``None``: 300, enough for 1e-3
            relative agreement with ``transform`` in float32 with the defaults).
        dtype : torch.dtype, default=None
            Parameter dtype (``None``: ``torch.float32``).

        Returns
        -------
        module : torch.nn.Module
            Masks, groups and step sizes are buffers; the dictionary is a parameter.
        """
        self._check_transform_params()
        from .export import estimator_to_torch
        from .export._reference import DEFAULT_N_ITER

        return estimator_to_torch(self, mode=mode, n_classes=n_classes,
                                  n_iter=DEFAULT_N_ITER if n_iter is None else n_iter, dtype=dtype)

