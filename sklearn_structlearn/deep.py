"""Stacked group sparse coding that learns connectivity, pooling groups and depth.

:class:`DeepStructureLearner` is the package's main estimator. It preprocesses the data
with a fixed affine map, then stacks :class:`~sklearn_structlearn.GroupSparseCodingLayer`
layers, each fitted on the pooled outputs of the one below, and decides the depth with
the efficient-coding rule: a new layer is kept only while it raises the entropy of the
representation by at least ``depth_tol`` (relative). Everything it learns -- which unit
connects to which input, which units pool together, how many layers -- is recorded in
``structure_`` and can be printed (:meth:`~DeepStructureLearner.summary`) or drawn
(``plot_*`` methods).
"""

import numbers
import time

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from ._groups import POOLINGS, pool_codes
from ._penalties import (
    AUTO_CONNECTIVITY_RATIO,
    AUTO_SUBSAMPLE,
    alpha_for_active_fraction,
    connectivity_from_codes,
    rough_codes,
    subsample_and_reference_atoms,
)
from ._progress import Progress, write_line
from ._threads import thread_limits
from ._validation import (
    check_bool,
    check_float,
    check_int,
    check_n_jobs,
    check_numeric_dtype,
    check_option,
)
from .entropy import entropy_gain, output_entropy, output_redundancy
from .layer import GroupSparseCodingLayer
from .structure import (
    LayerStructure,
    _check_image_shape,
    describe_structure,
    pooling_invariance,
    trace_receptive_fields,
)

__all__ = ["DeepStructureLearner"]

PREPROCESSINGS = ("standardize", "zca", None)
# What a layer beyond the first must improve to be kept (see the class Notes).
DEPTH_CRITERIA = ("redundancy", "entropy")

# "auto" code penalty of a layer: the penalty at which the layer's initial dictionary
# activates this fraction of the groups (see ``_resolve_penalties``). Dense enough that
# an input is explained by several local parts rather than by one global template --
# the regime in which the connectivity penalty can make the units local without
# killing them (measured on Fashion-MNIST, digits and natural patches, see the notes
# of the class docstring).
AUTO_ACTIVE_FRACTION = 0.25
STANDARDIZE_FLOOR = 0.01
_INVARIANCE_SUBSAMPLE = 256


def _shape_text(image_shape):
    """``28x28`` (channels shown only when there are several)."""
    shape = image_shape[:2] if len(image_shape) == 3 and image_shape[2] == 1 else image_shape
    return "x".join(map(str, shape))


def _is_per_layer(value):
    return isinstance(value, (list, tuple, np.ndarray))


class DeepStructureLearner(TransformerMixin, BaseEstimator):
    """Learn a deep network's structure -- connectivity, pooling groups, depth -- from data.

    The data are first preprocessed by a fixed affine map (``preprocessing``), then
    layers of group sparse coding
    (:class:`~sklearn_structlearn.GroupSparseCodingLayer`) are stacked: layer ``l + 1``
    is fitted on the pooled group outputs of layer ``l``. Each layer learns

    - its *connectivity*: the connectivity penalty prunes each unit's input weights;
      the surviving weights (``layers_[l].connectivity_``) say which unit reads which
      input. On images they come out spatially local, like a CNN's receptive fields;
    - its *pooling groups*: units of a group switch on together, and the group's pooled
      output (the L2 norm of its codes) is invariant to what varies inside the group.

    The *depth* follows the efficient coding principle (redundancy reduction). After
    each layer the redundancy of its outputs is estimated
    (:func:`~sklearn_structlearn.entropy.output_redundancy`: the information its units
    share, as a fraction of the sum of their entropies); the first layer is always
    kept, and layer ``l >= 2`` is kept only if it lowers the redundancy of layer
    ``l - 1`` by at least ``depth_tol`` -- that is, while the representation still has
    co-active units that a new layer can merge (see Notes). The first rejected layer
    is discarded and stacking stops; ``max_depth`` caps the depth.

    Parameters
    ----------
    max_depth : int, default=3
        Maximum number of layers.
    n_components : int, None or list, default=128
        Units per layer (``None``: as many as the layer has inputs, rounded up to a
        multiple of ``group_size``). A list gives one value per layer and must have
        ``max_depth`` entries; this holds for every per-layer parameter below.
    group_size : int or list, default=4
        Units per pooling group; must divide ``n_components``. 1 means no pooling
        structure (plain sparse coding).
    alpha : float, "auto" or list, default="auto"
        Code (group sparsity) penalty of each layer. ``"auto"``: the penalty at which
        the layer's initial dictionary activates about 25% of the groups on a
        subsample of its inputs (the resolved values are in ``layers_[l].alpha_``).
    connectivity_alpha : float, "auto" or list, default="auto"
        Connectivity penalty on the units' input weights. ``0`` gives dense layers.
        ``"auto"`` is data-scaled (never zero on non-constant data): 0.13 times the
        code cost ``alpha * mean_i |A_ik|`` of the median unit, for atoms drawn from
        the layer's inputs (see Notes and :func:`auto_penalties`; the same rule as
        ``GroupSparseCodingLayer(connectivity_alpha="auto")``). Resolved values are in
        ``layers_[l].connectivity_alpha_``.
    depth_tol : float, default=0.02
        Minimum improvement for a layer beyond the first to be kept: the drop of the
        redundancy (``depth_criterion="redundancy"``) or the relative entropy gain
        (``"entropy"``). ``-numpy.inf`` stacks ``max_depth`` layers, ``numpy.inf``
        keeps one.
    depth_criterion : {"redundancy", "entropy"}, default="redundancy"
        What a new layer must improve. ``"redundancy"``: the redundancy of the
        outputs (:func:`~sklearn_structlearn.entropy.output_redundancy`) must drop by
        ``depth_tol`` (absolute, it is a fraction). ``"entropy"``: the output entropy
        (``entropy_estimator``) must grow by ``depth_tol`` relative.
    entropy_estimator : {"binned", "knn"} or callable, default="binned"
        Entropy estimator of the outputs (``entropies_`` and the ``"entropy"``
        criterion), see :func:`~sklearn_structlearn.entropy.output_entropy`.
    preprocessing : {"standardize", "zca"} or None, default="zca"
        Fixed affine map applied first (``preprocess_mean_``, ``preprocess_matrix_``):
        ``"zca"`` centres and ZCA-whitens with the regularised covariance (see
        ``zca_epsilon``); ``"standardize"`` centres each feature and divides it by
        ``sqrt(var_j + 0.01 * median_j var_j)`` -- its standard deviation, except for
        almost constant features, which would otherwise become rare huge values
        (constant features are only centred); ``None`` leaves the data as they are.
        ``"zca"`` is the default because decorrelated inputs give local, alive units
        on images (see Notes); it costs a ``n_features x n_features`` eigendecomposition,
        use ``"standardize"`` for thousands of features.
    zca_epsilon : float, default=1.0
        ZCA regulariser, relative: ``zca_epsilon`` times the mean eigenvalue of the
        covariance is added to every eigenvalue before inverting their square roots,
        so directions of small variance (mostly noise) are not blown up.
    image_shape : tuple of int, default=None
        ``(height, width)`` or ``(height, width, channels)`` of the input images
        (flattened in C order, channels last). When given, ``structure_`` also
        measures the receptive-field locality and pooling invariance of every layer,
        and the receptive fields can be plotted.
    pooling : {"l2", "max"} or None, default="l2"
        Pooling of each layer's groups (``None``: raw codes are passed on).
    positive_code : bool, default=False
        Constrain every layer's codes to be non-negative.
    max_iter : int, default=30
        Maximum alternating iterations per layer.
    tol : float, default=1e-3
        Relative objective decrease under which a layer's fit stops.
    random_state : int, RandomState instance or None, default=None
        Seeds every layer (each gets its own seed drawn from it) and the subsamples;
        pass an int for reproducible fits.
    n_jobs : int, default=None
        Threads for the solvers (``None``: all cores available to Numba).
    verbose : int, default=0
        ``1`` prints one line per layer (size, fan-in, entropy, gain, decision, time);
        ``2`` also the layers' own progress.

    Attributes
    ----------
    layers_ : list of GroupSparseCodingLayer
        The fitted layers that were kept, bottom first.
    n_layers_ : int
        Number of layers kept (the learned depth).
    entropies_ : ndarray of shape ``(n_layers_ + 1,)``
        Output entropy (bits, see Notes) of the preprocessed input, then of the outputs
        of every kept layer, on the training data.
    candidate_entropies_ : ndarray of shape ``(n_layers_ + 1,)`` or ``(n_layers_ + 2,)``
        ``entropies_`` followed, when the depth rule rejected a layer, by the entropy
        of that rejected layer's outputs.
    redundancies_ : ndarray of shape ``(len(candidate_entropies_),)``
        Redundancy (:func:`~sklearn_structlearn.entropy.output_redundancy`) of the
        preprocessed input, then of the outputs of every tried layer (the rejected
        one last, as in ``candidate_entropies_``).
    entropy_gains_ : ndarray of shape ``(len(candidate_entropies_) - 1,)``
        Relative gain of every tried layer over the layer below
        (:func:`~sklearn_structlearn.entropy.entropy_gain`); the first entry, the
        gain of layer 1 over the preprocessed input, is informative only (the first
        layer is always kept).
    n_iter_ : int
        Largest number of alternating iterations run by a kept layer (each layer's own
        count is ``layers_[l].n_iter_``).
    stop_reason_ : str
        Why stacking stopped: ``"max_depth"``, ``"redundancy"`` (the tried layer did not
        lower the redundancy enough) or, with ``depth_criterion="entropy"``,
        ``"entropy_gain"`` (it did not raise the entropy enough).
    structure_ : list of LayerStructure
        Per kept layer: number of inputs, units and groups, connectivity mask (units x
        inputs), fan-in statistics and, with ``image_shape``, the receptive fields on
        the input pixels (traced through the layers below for deep layers), their
        locality ratio (median over units of the spatial spread of a unit's connection
        mass against random masks of the same fan-in; < 1 means local) and the pooling
        invariance (how much the pooled outputs change under one-pixel shifts of the
        raw images against the layer's unpooled codes, on 256 training images; not
        measured when ``pooling=None``).
    preprocess_mean_ : ndarray of shape (n_features_in,)
        Mean subtracted by the preprocessing (zeros when ``preprocessing=None``).
    preprocess_matrix_ : ndarray of shape (n_features_in, n_features_in) or None
        Linear map of the preprocessing: inputs of the first layer are
        ``(X - preprocess_mean_) @ preprocess_matrix_`` (``None``: identity).
    image_shape_ : tuple of int or None
        Validated ``image_shape`` as ``(height, width, channels)``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    GroupSparseCodingLayer : one layer.
    sklearn_structlearn.entropy.output_entropy : the entropy estimators.
    sklearn_structlearn.structure.describe_structure : the summary table.

    Notes
    -----
    **What the depth rule compares.** A deterministic layer cannot add information:
    with any consistent estimator the entropy of layer ``l + 1``'s outputs is at most
    that of layer ``l``'s, and pooling drops the variation inside groups on purpose.
    What a good deeper layer does instead is *reduce redundancy* (Barlow's form of
    the efficient coding principle): when units of layer ``l`` tend to be active
    together (parts of one object), layer ``l + 1`` can merge them into fewer, more
    independent outputs. The rule therefore measures, for every representation, its
    redundancy ``R = TC / H``: ``H`` is the sum over outputs of their binned entropies
    (a zero bin plus 10 equal-frequency bins, see
    :func:`~sklearn_structlearn.entropy.output_entropy`), ``TC`` the Gaussian total
    correlation ``-1/2 log2 det C`` of the outputs' correlation matrix, bias-corrected
    (:func:`~sklearn_structlearn.entropy.total_correlation`); ``R`` is the fraction of
    the summed bits that the outputs say twice. Layer ``l >= 2`` is kept when
    ``R_{l-1} - R_l >= depth_tol``. Since ``R >= 0``, a representation whose redundancy
    is already below ``depth_tol`` is the top one: the depth stops where there is
    nothing left to merge. Measured with ``max_iter=15`` (seeds 0-3): planted parts
    that switch on in "objects" of three give ``R`` 0.10-0.12 after a first layer
    coding the parts and 0.05-0.07 after a second layer pooling them in groups of
    three (a drop of 0.04-0.06: depth 2); the same parts switching on independently,
    or independent planted groups, give ``R`` 0.006-0.025 after layer 1 and drops
    under 0.006 (depth 1). With the defaults the rule picks depth 1 on digits
    (seeds 0-1: ``R`` 0.038-0.041 after layer 1, a second layer changes it by less than
    0.002), depth 2 on Fashion-MNIST (2000 images, seeds 0-2: ``R`` 0.08-0.10 after
    layer 1, 0.03-0.05 after layer 2, a third layer lowers it by less than 0.015), whose
    second layer pools the first layer's contour segments into whole garment shapes,
    and depth 2 on 12x12 natural patches (``R`` 0.13, 0.05, then 0.034).

    ``depth_criterion="entropy"`` is the older rule: layer ``l`` is kept when its
    output entropy (``entropy_estimator``) grows by ``depth_tol`` relative,
    ``(H_l - H_{l-1}) / |H_{l-1}|``. With the binned estimator (an upper bound of the
    joint entropy, exact for independent outputs) this only happens when a layer
    exposes its information in more, or more active, outputs.

    **"auto" penalties.** The code penalty is resolved here, per layer, on a subsample
    of the layer's inputs (:func:`auto_penalties`): it activates 25% of the groups of
    random-sample atoms; much sparser codes make whole-image templates, which the
    connectivity penalty then kills. The connectivity penalty is left to the layer,
    which applies the package's one rule for it (the same as
    ``GroupSparseCodingLayer(connectivity_alpha="auto")`` and :func:`auto_penalties`)
    to the codes of its initial dictionary: 0.13 times the code cost of the median
    unit. A unit whose connections cost more than its codes shrinks and dies, so
    scaling the penalty by the code cost (rather than by the data) prunes weak
    connections while keeping units alive. Measured with the defaults
    (``n_components=128``, ``group_size=4``, ZCA with ``zca_epsilon=1``), first
    layer: Fashion-MNIST (2000 images, seeds 0-2) locality 0.26-0.40, 95-98% of the
    units alive, median fan-in 50-69 of 784 pixels; digits (seeds 0-1) locality
    0.31-0.40, 97-99% alive, median fan-in 7 of 64; 12x12 natural patches (seed 0)
    locality 0.05, all units alive, median fan-in 6 of 144.

    Examples
    --------
    >>> from sklearn_structlearn import DeepStructureLearner
    >>> from sklearn_structlearn.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> learner = DeepStructureLearner(max_depth=2, n_components=64, image_shape=(8, 8),
    ...                                random_state=0)
    >>> Z = learner.fit_transform(X[:500])
    >>> Z.shape[1] == learner.layers_[-1].n_groups_
    True
    >>> len(learner.entropies_) == learner.n_layers_ + 1
    True
    >>> learner.get_feature_names_out()[:2]
    array(['layer1_group0', 'layer1_group1'], dtype=object)
    """

    def __init__(
        self,
        max_depth=3,
        *,
        n_components=128,
        group_size=4,
        alpha="auto",
        connectivity_alpha="auto",
        depth_tol=0.02,
        depth_criterion="redundancy",
        entropy_estimator="binned",
        preprocessing="zca",
        zca_epsilon=1.0,
        image_shape=None,
        pooling="l2",
        positive_code=False,
        max_iter=30,
        tol=1e-3,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.max_depth = max_depth
        self.n_components = n_components
        self.group_size = group_size
        self.alpha = alpha
        self.connectivity_alpha = connectivity_alpha
        self.depth_tol = depth_tol
        self.depth_criterion = depth_criterion
        self.entropy_estimator = entropy_estimator
        self.preprocessing = preprocessing
        self.zca_epsilon = zca_epsilon
        self.image_shape = image_shape
        self.pooling = pooling
        self.positive_code = positive_code
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------------ validation
    def _per_layer(self, name, max_depth, check):
        """One validated value per layer from a scalar or a list of ``max_depth`` values."""
        value = getattr(self, name)
        if _is_per_layer(value):
            values = list(value)
            if len(values) != max_depth:
                raise ValueError(
                    f"{name} has {len(values)} per-layer values but max_depth={max_depth}; "
                    f"give a single value for every layer or a list of exactly {max_depth}."
                )
            return [check(v, f"{name}[{i}]") for i, v in enumerate(values)]
        return [check(value, name)] * max_depth

    def _check_params(self, n_features):
        max_depth = check_int(self.max_depth, "max_depth", min_value=1)
        n_components = self._per_layer(
            "n_components", max_depth,
            lambda v, n: check_int(v, n, min_value=1, allow_none=True))
        group_size = self._per_layer(
            "group_size", max_depth, lambda v, n: check_int(v, n, min_value=1))
        for depth, (nc, gs) in enumerate(zip(n_components, group_size)):
            if nc is not None and nc % gs:
                raise ValueError(
                    f"Layer {depth + 1}: n_components={nc} is not a multiple of "
                    f"group_size={gs}; each pooling group needs group_size units."
                )
        alpha = self._per_layer(
            "alpha", max_depth, lambda v, n: check_float(v, n, min_value=0.0, allow_auto=True))
        connectivity_alpha = self._per_layer(
            "connectivity_alpha", max_depth,
            lambda v, n: check_float(v, n, min_value=0.0, allow_auto=True))
        # +-inf are meaningful here: "never add a layer" / "always stack to max_depth".
        if (isinstance(self.depth_tol, (bool, np.bool_))
                or not isinstance(self.depth_tol, numbers.Real) or np.isnan(self.depth_tol)):
            raise TypeError(f"depth_tol must be a float (inf allowed), got {self.depth_tol!r}.")
        check_option(self.depth_criterion, "depth_criterion", DEPTH_CRITERIA)
        estimator = self.entropy_estimator
        if not callable(estimator):
            check_option(estimator, "entropy_estimator", ("binned", "knn"))
        check_option(self.preprocessing, "preprocessing", PREPROCESSINGS)
        check_float(self.zca_epsilon, "zca_epsilon", min_value=0.0)
        check_option(self.pooling, "pooling", POOLINGS)
        check_bool(self.positive_code, "positive_code")
        check_int(self.max_iter, "max_iter", min_value=1)
        check_float(self.tol, "tol", min_value=0.0)
        check_int(self.verbose, "verbose", min_value=0)
        check_n_jobs(self.n_jobs)
        image_shape = None
        shape = self.image_shape
        if isinstance(shape, str) or (_is_per_layer(shape) and not all(
                isinstance(s, numbers.Integral) and not isinstance(s, (bool, np.bool_))
                for s in shape)):
            raise TypeError(
                f"image_shape must be a tuple of ints (height, width) or (height, width, "
                f"channels), got {shape!r}."
            )
        if self.image_shape is not None:
            try:
                image_shape = _check_image_shape(self.image_shape, n_features)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"Invalid image_shape: {exc}") from exc
        return {
            "max_depth": max_depth,
            "n_components": n_components,
            "group_size": group_size,
            "alpha": alpha,
            "connectivity_alpha": connectivity_alpha,
            "image_shape": image_shape,
        }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # ------------------------------------------------------------------ preprocessing
    def _fit_preprocessing(self, X):
        """Set ``preprocess_mean_`` / ``preprocess_matrix_`` (computed in float64)."""
        X64 = np.asarray(X, dtype=np.float64)
        n_features = X64.shape[1]
        if self.preprocessing is None:
            self.preprocess_mean_ = np.zeros(n_features)
            self.preprocess_matrix_ = None
            return
        mean = X64.mean(axis=0)
        centred = X64 - mean
        if self.preprocessing == "standardize":
            self._set_preprocessing(mean, centred.var(axis=0))
        else:
            self._set_preprocessing(mean, centred.T @ centred / X64.shape[0])

    def _set_preprocessing(self, mean, second_moment):
        """The affine map from the mean and the centred second moment of the data.

        ``second_moment`` is the per-feature variance for ``"standardize"`` and the
        covariance matrix for ``"zca"`` -- what :meth:`fit` computes from the whole data
        and :meth:`fit_stream` accumulates over the batches of its first pass.
        """
        if self.preprocessing == "standardize":
            var = second_moment
            # Regularised: a feature that is almost constant (a border pixel that is lit
            # in a handful of images) would otherwise be blown up into rare huge values
            # that the sparse coding spends its units on.
            floor = STANDARDIZE_FLOOR * float(np.median(var))
            scale = np.sqrt(var + floor)
            # Constant features are only centred (as StandardScaler does).
            scale[scale <= 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)] = 1.0
            matrix = np.diag(1.0 / scale)
        else:  # "zca"
            eigvals, eigvecs = np.linalg.eigh(second_moment)
            eigvals = np.maximum(eigvals, 0.0)
            eps = self.zca_epsilon * eigvals.mean()
            if eps <= 0:
                # Zero variance everywhere (or zca_epsilon=0 on degenerate data): there is
                # nothing to whiten; keep the (centred) data as they are.
                eps = 1.0 if eigvals.mean() == 0 else 0.0
            with np.errstate(divide="ignore"):
                inv_sqrt = np.where(eigvals + eps > 0, 1.0 / np.sqrt(eigvals + eps), 0.0)
            matrix = (eigvecs * inv_sqrt) @ eigvecs.T
        self.preprocess_mean_ = mean
        self.preprocess_matrix_ = matrix

    def _preprocess(self, X):
        """Apply the affine preprocessing in the dtype of ``X``."""
        Z = X - self.preprocess_mean_.astype(X.dtype, copy=False)
        if self.preprocess_matrix_ is None:
            return Z
        if self.preprocessing == "standardize":
            # The matrix is diagonal: scale the columns instead of a p x p product.
            return Z * np.diag(self.preprocess_matrix_).astype(X.dtype, copy=False)
        return Z @ self.preprocess_matrix_.astype(X.dtype, copy=False)

    # ------------------------------------------------------------------ helpers
    def _entropy(self, Z):
        return output_entropy(Z, self.entropy_estimator, random_state=0)

    def _log(self, message):
        if self.verbose:
            write_line(f"[{type(self).__name__}] {message}")

    def _resolve_penalties(self, Z, n_components, group_size, alpha, connectivity_alpha, rng):
        """(alpha, connectivity_alpha) of a layer: "auto" alpha resolved from ``Z``.

        An "auto" connectivity penalty is left to the layer, which applies the one rule
        (:func:`~sklearn_structlearn._penalties.auto_connectivity_alpha`, as
        :func:`auto_penalties` does) on a subsample and reference atoms of its own.
        """
        if alpha != "auto":
            return alpha, connectivity_alpha
        # alpha only: the layer measures its own "auto" connectivity penalty
        auto_alpha, _, _ = _auto_code_alpha(Z, n_components, group_size, self.positive_code,
                                            None, AUTO_SUBSAMPLE, rng, self.n_jobs)
        return (1.0 if auto_alpha is None else auto_alpha), connectivity_alpha

    def _forward(self, X, n_layers, *, codes=False):
        """Outputs of layer ``n_layers`` for raw inputs (its raw codes if ``codes``)."""
        Z = self._preprocess(X)
        for layer in self.layers_[:n_layers - 1]:
            Z = layer.transform(Z)
        last = self.layers_[n_layers - 1]
        return last.encode(Z) if codes else last.transform(Z)

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None):
        """Learn the preprocessing, the layers and the depth from ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (e.g. flattened images).
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : DeepStructureLearner
            The fitted learner.
        """
        self._fit(X)
        return self

    def fit_transform(self, X, y=None):
        """Fit to ``X`` and return the outputs of the top kept layer.

        Equivalent to ``fit(X).transform(X)``, without coding ``X`` twice.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features_out)
            Pooled outputs of the last layer.
        """
        Z = self._fit(X)
        # set_output wraps fit_transform too (pandas output); only the array is ours.
        return Z

    def fit_stream(self, batches, *, n_passes=3, n_held=4096):
        """Learn the preprocessing, the layers and the depth from a stream of batches.

        For data that do not fit in memory: the batches are read one at a time, and
        only one batch, the preprocessing statistics and a held sample of ``n_held``
        rows are ever in memory. The stream is read ``1 + n_passes`` times per layer
        tried:

        1. a first pass accumulates the preprocessing statistics (mean and variances
           for ``"standardize"``, mean and covariance for ``"zca"``; merged batch by
           batch, equal to what :meth:`fit` computes on the whole data) and draws a
           *held sample*: ``n_held`` rows, uniformly at random from the whole stream
           (reservoir sampling);
        2. each layer is learned online
           (:meth:`GroupSparseCodingLayer.partial_fit`): it is initialised on the held
           sample, then runs ``n_passes`` passes over the stream, every batch being
           preprocessed and sent through the layers below (already learned, fixed);
        3. the held sample plays the part of the training data of :meth:`fit` for
           everything else: the "auto" penalties of every layer, the depth rule
           (``entropies_``, ``redundancies_``...) and ``structure_``.

        :meth:`fit` (the whole data in memory, full-batch alternating minimisation)
        is unchanged; on data that fit in memory it is the more accurate of the two.

        Parameters
        ----------
        batches : iterable of array-like, or callable
            The stream. Either a re-iterable collection of batches (a list of arrays,
            ``numpy.array_split(X, 50)``, a ``torch.utils.data.DataLoader``...) or a
            function called with no argument that returns a fresh iterable of batches
            at every call -- the way to stream a generator:
            ``fit_stream(lambda: read_batches(path))``. Each batch is an array-like
            or pandas DataFrame of shape (n_rows, n_features) (float32 batches are
            kept float32); scipy.sparse batches are densified one at a time. A
            generator object itself is refused: it can be read only once.
        n_passes : int, default=3
            Passes over the stream for each layer.
        n_held : int, default=4096
            Rows of the held sample (at least 2).

        Returns
        -------
        self : DeepStructureLearner
            The fitted learner. Besides the attributes of :meth:`fit` (computed on the
            held sample where :meth:`fit` uses the training data), it has
            ``n_samples_seen_`` (rows in the stream) and ``n_batches_`` (batches per
            pass); ``layers_[l].n_iter_`` counts the batches each layer learned from.

        See Also
        --------
        fit : the in-memory fit.
        sklearn_structlearn.distributed.fit_dask : the same from a dask array.

        Notes
        -----
        Learning a layer from mini-batches optimises the same objective as :meth:`fit`
        but with running averages of the layer's statistics (see the Notes of
        :meth:`GroupSparseCodingLayer.partial_fit`), so the learned layers are close
        to, not identical with, those of :meth:`fit`; more passes bring them closer.
        Batches of a few hundred to a few thousand rows work well.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_structlearn import DeepStructureLearner
        >>> from sklearn_structlearn.datasets import load_digits_images
        >>> X, _ = load_digits_images()
        >>> def batches():  # e.g. read from disk, one batch at a time
        ...     for start in range(0, 1000, 100):
        ...         yield X[start:start + 100]
        >>> learner = DeepStructureLearner(max_depth=2, n_components=32, random_state=0)
        >>> learner = learner.fit_stream(batches, n_passes=2, n_held=500)
        >>> learner.n_samples_seen_, learner.n_batches_
        (1000, 10)
        >>> learner.transform(X[:5]).shape == (5, learner.layers_[-1].n_groups_)
        True
        """
        from ._streaming import Reservoir, RunningMoments, batch_source

        max_depth = check_int(self.max_depth, "max_depth", min_value=1)
        n_passes = check_int(n_passes, "n_passes", min_value=1)
        n_held = check_int(n_held, "n_held", min_value=2)
        next_stream = batch_source(batches, 1 + max_depth * n_passes)
        rng = check_random_state(self.random_state)
        reservoir = Reservoir(n_held, np.random.RandomState(rng.randint(np.iinfo(np.int32).max)))

        def stream(first_pass=False):
            """Validated dense batches (pandas, float32 and sparse handled here)."""
            for batch in next_stream():
                check_numeric_dtype(batch, "batch")
                kwargs = dict(dtype=[np.float64, np.float32], accept_sparse=("csr", "csc"),
                              ensure_min_samples=0)
                if first_pass:  # sets, then checks, n_features_in_ and feature_names_in_
                    batch = validate_data(self, batch, **kwargs,
                                          reset=not hasattr(self, "n_features_in_"))
                else:
                    batch = check_array(batch, **kwargs)
                    if batch.shape[1] != self.n_features_in_:
                        raise ValueError(
                            f"batch has {batch.shape[1]} features, but the stream's first "
                            f"pass had {self.n_features_in_}: the batches callable must "
                            "return the same data at every call."
                        )
                if sp.issparse(batch):
                    batch = batch.toarray()  # one batch at a time: preprocessing centres it
                if batch.shape[0]:
                    yield batch

        # 1. preprocessing statistics and the held sample
        start = time.perf_counter()
        for attr in ("n_features_in_", "feature_names_in_"):
            self.__dict__.pop(attr, None)
        check_option(self.preprocessing, "preprocessing", PREPROCESSINGS)
        moments = None
        n_batches = 0
        for batch in stream(first_pass=True):
            if moments is None:
                self._check_params(batch.shape[1])  # bad parameters fail before a whole pass
                moments = RunningMoments(batch.shape[1], full=self.preprocessing == "zca")
            moments.update(batch)
            reservoir.update(batch)
            n_batches += 1
        if moments is None or moments.n < 2:
            raise ValueError(
                "fit_stream needs at least 2 rows in the stream, got "
                f"{0 if moments is None else moments.n}."
            )
        if self.preprocessing is None:
            self.preprocess_mean_ = np.zeros(moments.mean.shape[0])
            self.preprocess_matrix_ = None
        else:
            self._set_preprocessing(moments.mean.copy(), moments.second_moment())
        held = reservoir.sample()
        feature_names = getattr(self, "feature_names_in_", None)
        self._log(
            f"stream: {moments.n} rows x {held.shape[1]} features in {n_batches} batches, "
            f"held sample {held.shape[0]} rows [{time.perf_counter() - start:.1f}s]"
        )

        # 2. each layer learned online from the stream sent through the layers below
        def fit_layer(layer, Z_held, below):
            layer.partial_fit(Z_held)  # initialised on a uniform sample of the stream
            bar = Progress(n_passes * n_batches, desc=f"{type(self).__name__} layer "
                           f"{len(below) + 1}", verbose=self.verbose, unit="batch")
            t0 = time.perf_counter()
            for p in range(n_passes):
                for batch in stream():
                    Z = self._preprocess(batch)
                    for fitted in below:
                        Z = fitted.transform(Z)
                    layer.partial_fit(Z)
                    bar.update(objective=layer.objective_history_[-1])
                self._log(
                    f"layer {len(below) + 1} pass {p + 1}/{n_passes}: surrogate objective "
                    f"{layer.objective_history_[-1]:.6e} after {layer.n_iter_} batches "
                    f"[{time.perf_counter() - t0:.1f}s]"
                )
            bar.close()

        # 3. the depth rule and the structure on the held sample, as fit does on X
        self._fit(held, stream_layer_fitter=fit_layer)
        if feature_names is not None:
            self.feature_names_in_ = feature_names
        self.n_samples_seen_ = int(moments.n)
        self.n_batches_ = n_batches
        return self

    def _fit(self, X, *, stream_layer_fitter=None):
        if sp.issparse(X):
            raise TypeError(
                f"{type(self).__name__}.fit does not accept sparse X (got a {X.format} "
                "matrix): the preprocessing centres the data, which makes it dense. Densify "
                "it (X.toarray()), use fit_stream with sparse batches (densified one batch at "
                "a time), or fit a GroupSparseCodingLayer, which accepts sparse input."
            )
        if stream_layer_fitter is None:  # attributes only a fit_stream has
            for attr in ("n_samples_seen_", "n_batches_"):
                self.__dict__.pop(attr, None)
        check_numeric_dtype(X, "X")
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        params = self._check_params(X.shape[1])
        self.image_shape_ = params["image_shape"]
        max_depth = params["max_depth"]
        rng = check_random_state(self.random_state)
        # The structure measurements get their own seed, drawn first, so that they use
        # the same images whatever max_depth is.
        structure_seed = rng.randint(np.iinfo(np.int32).max)
        seeds = rng.randint(np.iinfo(np.int32).max - 1, size=max_depth)
        start = time.perf_counter()

        if stream_layer_fitter is None:  # fit_stream has set it from the whole stream
            self._fit_preprocessing(X)
        Z = self._preprocess(X)
        entropies = [self._entropy(Z)]
        redundancies = [output_redundancy(Z)]
        gains = []
        layers = []
        outputs = Z
        self.stop_reason_ = "max_depth"
        self._log(
            f"input: {X.shape[0]} samples x {X.shape[1]} features, preprocessing="
            f"{self.preprocessing!r}, entropy {entropies[0]:.1f} bits"
        )
        # a bar over the layers (tqdm installed, verbose >= 1), besides the log lines
        bar = Progress(max_depth, desc=type(self).__name__, verbose=self.verbose, unit="layer")
        with thread_limits(self.n_jobs):
            for depth in range(1, max_depth + 1):
                t0 = time.perf_counter()
                i = depth - 1
                alpha, conn = self._resolve_penalties(
                    Z, params["n_components"][i], params["group_size"][i], params["alpha"][i],
                    params["connectivity_alpha"][i], np.random.RandomState(seeds[i] + 1),
                )
                layer = GroupSparseCodingLayer(
                    n_components=params["n_components"][i],
                    group_size=params["group_size"][i],
                    alpha=alpha,
                    connectivity_alpha=conn,
                    pooling=self.pooling,
                    positive_code=self.positive_code,
                    max_iter=self.max_iter,
                    tol=self.tol,
                    random_state=int(seeds[i]),
                    n_jobs=self.n_jobs,
                    verbose=max(self.verbose - 1, 0),
                )
                if stream_layer_fitter is None:
                    layer.fit(Z)
                else:  # fit_stream: learned from the stream; Z is the held sample's input
                    stream_layer_fitter(layer, Z, layers)
                Z_next = layer.transform(Z)
                bar.update()
                h = self._entropy(Z_next)
                r = output_redundancy(Z_next)
                gain = entropy_gain(entropies[-1], h)
                # the score the depth rule asks a new layer to raise by depth_tol
                score = (redundancies[-1] - r if self.depth_criterion == "redundancy"
                         else gain)
                keep = depth == 1 or score >= self.depth_tol
                gains.append(gain)
                fan_in = layer.connectivity_.sum(axis=1).mean()
                verdict = "kept" if keep else (
                    f"rejected ({self.depth_criterion} score {score:+.3f} < "
                    f"depth_tol={self.depth_tol:g})")
                self._log(
                    f"layer {depth}: {Z.shape[1]} inputs -> {layer.n_components_} units in "
                    f"{layer.n_groups_} groups of {layer.group_size}, mean fan-in {fan_in:.1f}, "
                    f"entropy {h:.1f} bits (gain {gain:+.1%}), redundancy {r:.3f} "
                    f"(reduction {redundancies[-1] - r:+.3f}) "
                    f"{verdict} "
                    f"[{time.perf_counter() - t0:.1f}s]"
                )
                if not keep:
                    self.candidate_entropies_ = np.array(entropies + [h])
                    self.redundancies_ = np.array(redundancies + [r])
                    self.stop_reason_ = ("redundancy" if self.depth_criterion == "redundancy"
                                         else "entropy_gain")
                    break
                layers.append(layer)
                entropies.append(h)
                redundancies.append(r)
                Z = outputs = Z_next
        bar.close()
        self.layers_ = layers
        self.n_layers_ = len(layers)
        self.entropies_ = np.array(entropies)
        if self.stop_reason_ == "max_depth":
            self.candidate_entropies_ = self.entropies_.copy()
            self.redundancies_ = np.array(redundancies)
        self.entropy_gains_ = np.array(gains)
        self.n_iter_ = max(layer.n_iter_ for layer in layers)
        self.structure_ = self._describe_layers(X, np.random.RandomState(structure_seed))
        self._log(
            f"depth {self.n_layers_} ({self.stop_reason_}), total "
            f"{time.perf_counter() - start:.1f}s"
        )
        return outputs

    def _describe_layers(self, X, rng):
        """One LayerStructure per kept layer (fields traced to the pixels, invariance)."""
        tracing_sizes = [
            layer.group_size if self.pooling is not None else 1 for layer in self.layers_
        ]
        fields, _ = trace_receptive_fields(
            [(layer.components_, gs) for layer, gs in zip(self.layers_, tracing_sizes)],
            return_all=True,
        )
        sample = None
        if self.image_shape_ is not None:
            rows = rng.choice(X.shape[0], size=min(X.shape[0], _INVARIANCE_SUBSAMPLE),
                              replace=False)
            sample = X[np.sort(rows)]
        structures = []
        for depth, layer in enumerate(self.layers_, start=1):
            invariance = None
            if sample is not None and self.pooling is not None:
                invariance = self._invariance(sample, depth)
            structures.append(LayerStructure.from_components(
                layer.components_,
                layer.group_size,
                image_shape=self.image_shape_,
                receptive_fields=None if depth == 1 else fields[depth - 1],
                invariance=invariance,
                random_state=rng.randint(np.iinfo(np.int32).max),
            ))
        return structures

    def _invariance(self, X, depth):
        """pooling_invariance of layer ``depth`` on raw images ``X`` (codes computed once)."""
        cache = {}

        def codes(X_in):
            # pooling_invariance asks for the pooled outputs and the codes of the same
            # array in turn; code it once and pool the codes.
            key = id(X_in)
            if key not in cache:
                cache.clear()
                cache[key] = (X_in, self._forward(X_in, depth, codes=True))
            return cache[key][1]

        layer = self.layers_[depth - 1]

        def pooled(X_in):
            return pool_codes(codes(X_in), layer.group_size, self.pooling)

        return pooling_invariance(pooled, codes, X, self.image_shape_)

    # ------------------------------------------------------------------ transforming
    def transform(self, X):
        """Compute the outputs of the top kept layer (pooled group outputs by default).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features_out)
            Pooled outputs of the last layer (raw codes when ``pooling=None``), of the
            dtype of ``X`` (float32 or float64).
        """
        check_is_fitted(self)
        check_numeric_dtype(X, "X")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        with thread_limits(self.n_jobs):
            return self._forward(X, self.n_layers_)

    def get_feature_names_out(self, input_features=None):
        """Get the names of the outputs: ``"layer{L}_group{g}"`` (``"layer{L}_unit{k}"`` unpooled).

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Only checked against the names seen in ``fit``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per output of the top layer ``L = n_layers_``.
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features, generate_names=False)
        top = self.layers_[-1]
        if self.pooling is None:
            names = [f"layer{self.n_layers_}_unit{k}" for k in range(top.n_components_)]
        else:
            names = [f"layer{self.n_layers_}_group{g}" for g in range(top.n_groups_)]
        return np.asarray(names, dtype=object)

    # ------------------------------------------------------------------ inspecting
    def summary(self):
        """Readable description of the learned structure.

        Returns
        -------
        text : str
            Preprocessing, depth decision and one row per depth (inputs, units,
            groups, fan-in, density, entropy, gain, locality, invariance); see
            :func:`~sklearn_structlearn.structure.describe_structure`.
        """
        check_is_fitted(self)
        pre = self.preprocessing
        if pre == "zca":
            pre = f"zca (epsilon {self.zca_epsilon:g} x mean eigenvalue)"
        lines = [
            f"{type(self).__name__}: depth {self.n_layers_} of max_depth={self.max_depth}",
            f"inputs: {self.n_features_in_} features"
            + (f" (images {_shape_text(self.image_shape_)})" if self.image_shape_ else "")
            + f", preprocessing: {pre}",
        ]
        if self.stop_reason_ == "entropy_gain":
            lines.append(
                f"stopped: layer {self.n_layers_ + 1} gained {self.entropy_gains_[-1]:+.1%} "
                f"entropy < depth_tol={self.depth_tol:.1%}, not kept"
            )
        elif self.stop_reason_ == "redundancy":
            lines.append(
                f"stopped: layer {self.n_layers_ + 1} lowered the redundancy by "
                f"{self.redundancies_[-2] - self.redundancies_[-1]:+.3f} < "
                f"depth_tol={self.depth_tol:g}, not kept"
            )
        else:
            lines.append("stopped: max_depth reached")
        gains = ", ".join(
            f"layer {d} {g:+.1%}" + ("" if d <= self.n_layers_ else " (not kept)")
            for d, g in enumerate(self.entropy_gains_, start=1)
        )
        lines.append(f"relative entropy gains (layer 1 is always kept): {gains}")
        redundancy = ", ".join(f"{r:.3f}" for r in self.redundancies_)
        lines.append(f"redundancy of the input and of each tried layer's outputs: {redundancy}")
        penalties = ", ".join(
            f"layer {d}: alpha {layer.alpha_:.3g}, connectivity_alpha "
            f"{layer.connectivity_alpha_:.3g}"
            for d, layer in enumerate(self.layers_, start=1)
        )
        lines.append(f"penalties: {penalties}")
        lines.append(describe_structure(self.structure_, self.candidate_entropies_))
        return "\n".join(lines)

    def _check_layer(self, layer):
        check_is_fitted(self)
        if (not isinstance(layer, numbers.Integral) or isinstance(layer, bool)
                or not 1 <= layer <= self.n_layers_):
            raise ValueError(
                f"layer must be an int between 1 and n_layers_={self.n_layers_}, got {layer!r}."
            )
        return int(layer)

    def receptive_fields(self, layer=1):
        """Receptive fields of a layer's units on the (preprocessed) input features.

        Parameters
        ----------
        layer : int, default=1
            Depth, from 1 (bottom) to ``n_layers_``.

        Returns
        -------
        fields : ndarray of shape (n_units, n_features_in)
            The signed input weights for layer 1; for deeper layers the non-negative
            fields traced through the connectivity of the layers below
            (:func:`~sklearn_structlearn.structure.trace_receptive_fields`).
        """
        layer = self._check_layer(layer)
        if layer == 1:
            return self.layers_[0].components_
        return self.structure_[layer - 1].receptive_fields

    def plot_receptive_fields(self, layer=1, **kwargs):
        """Figure of the receptive fields of a layer's units (needs ``image_shape``).

        Parameters
        ----------
        layer : int, default=1
            Depth, from 1 to ``n_layers_``; deeper fields are traced to the pixels.
        **kwargs
            Passed to :func:`~sklearn_structlearn.plotting.plot_receptive_fields`
            (``n_units``, ``sort_by``, ``permutation``, ``title``...).

        Returns
        -------
        fig : matplotlib.figure.Figure
            One panel per unit, the unit's weights on the pixel grid.
        """
        from .plotting import plot_receptive_fields

        layer = self._check_layer(layer)
        if self.image_shape_ is None:
            raise ValueError(
                "plot_receptive_fields needs the image shape: fit with image_shape=(height, "
                "width) to draw the receptive fields as images."
            )
        kwargs.setdefault("title", f"layer {layer} receptive fields"
                          + (" (traced to the pixels)" if layer > 1 else ""))
        return plot_receptive_fields(self.receptive_fields(layer), self.image_shape_, **kwargs)

    def plot_entropy_curve(self, **kwargs):
        """Figure of the output entropy against depth (rejected layer drawn hollow).

        Parameters
        ----------
        **kwargs
            Passed to :func:`~sklearn_structlearn.plotting.plot_entropy_curve`
            (``accuracies``, ``title``...).

        Returns
        -------
        fig : matplotlib.figure.Figure
            The output entropy at every depth tried.
        """
        from .plotting import plot_entropy_curve

        check_is_fitted(self)
        kwargs.setdefault("title", "output entropy vs depth")
        return plot_entropy_curve(self.candidate_entropies_, n_layers=self.n_layers_, **kwargs)

    def plot_connectivity(self, layer=1, **kwargs):
        """Figure of a layer's connectivity mask (units x inputs).

        Parameters
        ----------
        layer : int, default=1
            Depth, from 1 to ``n_layers_``.
        **kwargs
            Passed to :func:`~sklearn_structlearn.plotting.plot_connectivity`.

        Returns
        -------
        fig : matplotlib.figure.Figure
            The layer's connectivity mask as an image (units x inputs).
        """
        from .plotting import plot_connectivity

        layer = self._check_layer(layer)
        fitted = self.layers_[layer - 1]
        kwargs.setdefault("group_size", fitted.group_size)
        return plot_connectivity(fitted.connectivity_, **kwargs)

    def to_torch(self, mode="exact", n_classes=None, **kwargs):
        """Export the learned network (preprocessing included) as a ``torch.nn.Module``.

        Parameters
        ----------
        mode : {"exact", "feedforward"}, default="exact"
            See :func:`~sklearn_structlearn.export.build_torch_module`.
        n_classes : int, default=None
            Adds a linear classification head with this many outputs.
        **kwargs
            Passed to :func:`~sklearn_structlearn.export.build_torch_module`
            (``n_iter``, ``dtype``, ``restart``).

        Returns
        -------
        module : torch.nn.Module
            The network; its forward pass maps raw inputs to the outputs of the top
            layer (or to logits with ``n_classes``).

        Examples
        --------
        >>> import numpy as np
        >>> import torch
        >>> from sklearn_structlearn import DeepStructureLearner
        >>> from sklearn_structlearn.datasets import load_digits_images
        >>> X, _ = load_digits_images(dtype=np.float64)
        >>> learner = DeepStructureLearner(max_depth=1, n_components=32, max_iter=5,
        ...                                random_state=0).fit(X[:300])
        >>> net = learner.to_torch(mode="exact", dtype=torch.float64)
        >>> out = net(torch.from_numpy(X[300:305])).detach().numpy()
        >>> bool(np.allclose(out, learner.transform(X[300:305]), atol=1e-5))
        True
        """
        from .export import estimator_to_torch

        check_is_fitted(self)
        # The specs (layers, preprocess_mean_ / preprocess_matrix_) are read in one
        # place only: export.layer_specs_from_estimator.
        return estimator_to_torch(self, mode=mode, n_classes=n_classes, **kwargs)


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
    """Data-scaled code and connectivity penalties for a layer fitted on ``X``.

    On a subsample, reference atoms are drawn from normalised random rows
    (:func:`~sklearn_structlearn._penalties.subsample_and_reference_atoms`), then:

    - ``alpha`` is the code penalty at which these atoms activate ``active_fraction`` of
      the groups (bisection in log scale), unless it is given; the fraction is capped
      so that no more than ``n_features / 2`` units are active on average;
    - with the codes ``A`` at that penalty,
      ``connectivity_alpha = connectivity_ratio * alpha * median_k mean_i |A_ik|`` --
      the package's one connectivity rule
      (:func:`~sklearn_structlearn._penalties.auto_connectivity_alpha`, which the
      layers apply themselves when ``connectivity_alpha="auto"``).

    Why this scale: rescaling an atom ``D_k`` by ``s <= 1`` (and its codes by ``1 / s``)
    leaves the reconstruction unchanged, lowers the connectivity cost
    ``connectivity_alpha * ||D_k||_1`` by ``s`` and raises the code cost, about
    ``alpha * mean_i |A_ik|``, by ``1 / s``. A unit whose connections cost more than its
    codes therefore shrinks, is used less, and dies. Tying the connectivity penalty to
    the code cost of the typical unit keeps a typical unit with ``||D_k||_1`` below
    ``1 / connectivity_ratio`` (about ``1 / connectivity_ratio**2`` inputs of equal
    weight) out of that spiral, whatever the number of inputs and the scale of the data
    (both penalties scale like the data's variance).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
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
    connectivity_alpha : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.deep import auto_penalties
    >>> X = np.random.RandomState(0).standard_normal((300, 20))
    >>> alpha, connectivity_alpha = auto_penalties(X, 16, 2, random_state=0)
    >>> bool(alpha > 0 and connectivity_alpha > 0)
    True
    """
    if connectivity_ratio is None:
        connectivity_ratio = AUTO_CONNECTIVITY_RATIO
    fitted_alpha, sub, D = _auto_code_alpha(X, n_components, group_size, positive,
                                            active_fraction, n_subsample,
                                            check_random_state(random_state), n_jobs,
                                            search=alpha is None)
    if alpha is None:
        if fitted_alpha is None:
            return 1.0, 0.0  # all-zero inputs: nothing to code, nothing to prune
        alpha = fitted_alpha
    codes = rough_codes(sub, D, alpha, group_size, positive, n_jobs)
    return float(alpha), connectivity_from_codes(codes, alpha, connectivity_ratio)


def _auto_code_alpha(X, n_components, group_size, positive, active_fraction, n_subsample,
                     rng, n_jobs, *, search=True):
    """The "auto" code penalty, with the subsample and reference atoms it was measured on.

    Returns ``(alpha, sub, atoms)``; ``alpha`` is None for all-zero inputs or when
    ``search`` is False (the caller gave alpha and only needs the sample).
    """
    from .objective import alpha_max, group_norms

    if active_fraction is None:
        active_fraction = AUTO_ACTIVE_FRACTION
    X = np.asarray(X, dtype=np.float64)
    n_features = X.shape[1]
    if n_components is None:
        n_components = -(-n_features // group_size) * group_size
    # the same subsample and reference atoms as the connectivity rule of the layers
    sub, D = subsample_and_reference_atoms(X, n_subsample, n_components, rng)
    if not search:
        return None, sub, D
    # No more active units than half the inputs: beyond that the code problem is
    # nearly singular (as many active atoms as dimensions), slow and not sparse.
    active_fraction = min(active_fraction, 0.5 * n_features / n_components)
    high = float(alpha_max(sub, D, group_size, positive))
    if high <= 0:
        return None, sub, D

    def too_dense(penalty):
        codes = rough_codes(sub, D, penalty, group_size, positive, n_jobs)
        return (group_norms(codes, group_size) > 0).mean() > active_fraction

    return alpha_for_active_fraction(too_dense, high, n_halvings=12), sub, D
