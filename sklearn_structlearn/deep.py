"""Stacked group sparse coding that learns connectivity, pooling groups and depth.

:class:`DeepStructureLearner` is the package's main estimator, and a thin one: it
preprocesses the data with a fixed affine map (:mod:`~sklearn_structlearn.preprocessing`),
then stacks :class:`~sklearn_structlearn.GroupSparseCodingLayer` layers, each fitted on
the pooled outputs of the one below, and decides the depth with the efficient-coding
rule: a new layer is kept only while it raises, by at least ``depth_tol``, the fraction
of the input a linear read-out of the outputs recovers. How one layer is fitted -- in memory
(:meth:`~sklearn_structlearn.DeepStructureLearner.fit`) or from a stream
(:meth:`~sklearn_structlearn.DeepStructureLearner.fit_stream`, driven by
``_streaming``) -- is separate from the stacking loop. Everything it learns is recorded
in ``structure_`` (:func:`~sklearn_structlearn.structure.describe_layers`) and can be
printed (:meth:`~sklearn_structlearn.DeepStructureLearner.summary`) or drawn
(``plot_*`` methods).
"""

import numbers
import time

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from ._param_validation import (
    N_JOBS,
    StrOptions,
    fit_context,
    int_in,
    real_in,
    validate_named,
)
from ._progress import Progress, write_line
from ._streaming import BatchStream, StreamLayerFitter, first_pass
from ._threads import thread_limits
from ._validation import check_magnitude, check_memory, check_numeric_dtype
from ._information import decoding_information
from .entropy import entropy_gain, output_entropy, redundancy_given_entropy
from .layer import (
    PENALTY,
    PENALTY_SCALE,
    POOLING,
    TRANSFORM_ALGORITHM,
    GroupSparseCodingLayer,
    check_fit_memory,
)
from .penalties import auto_n_components, auto_penalties
from .preprocessing import Preprocessor, check_preprocessing_memory
from .structure import _check_image_shape, describe_layers, stack_summary

# ``auto_penalties`` lives in ``penalties.py``; imported here so that
# ``from sklearn_structlearn.deep import auto_penalties`` keeps working.
__all__ = ["DeepStructureLearner", "auto_penalties"]

# What a layer beyond the first must improve to be kept (see the class Notes).
DEPTH_CRITERIA = ("information", "redundancy", "entropy")

# the parameters that may be given once for all layers or as a list, one per layer
_PER_LAYER = {
    "n_components": [int_in(1), None],
    "group_size": [int_in(1)],
    "alpha": PENALTY,
    "connectivity_alpha": PENALTY,
}


def _is_per_layer(value):
    return isinstance(value, (list, tuple, np.ndarray))


def _fit_in_memory(layer, Z, below):
    """How :meth:`DeepStructureLearner.fit` learns a layer: from all its inputs ``Z``."""
    layer.fit(Z)


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

    The defaults keep the input's information (issue 12): an overcomplete first layer
    (8 units per input, up to 1024), a code penalty at which the codes still explain
    90% of the input's variance, non-negative codes, rows coded feed-forward by the
    learned dictionary (``transform_algorithm``), and one layer -- on the features
    benchmark (``benchmarks/RESULTS.md`` section 12) this representation read by a
    logistic regression beats the raw pixels on digits (0.985 against 0.972) and on
    Fashion-MNIST (0.884 against 0.847); on small tables it is 1.2-2.2 points below the
    standardised raw features.

    The *depth* follows the efficient coding principle (``depth_criterion``). After
    each layer, the fraction of the preprocessed input's variance that a linear
    read-out of its outputs recovers on held-out rows is measured
    (``_information.decoding_information``, in
    ``decodable_variances_``); the first layer is always kept, and layer ``l >= 2``
    is kept only if it raises that fraction by at least ``depth_tol`` (see Notes).
    The first rejected layer is discarded and stacking stops; ``max_depth`` caps the
    depth (1 by default: on digits, a second layer lowered the accuracy of a read-out
    of the top layer, 0.970 -> 0.964, in the research runs of issue 12; a second layer
    also doubles the fit time).

    Parameters
    ----------
    max_depth : int, default=1
        Maximum number of layers.
    n_components : int, None or list, default=None
        Units per layer. ``None``: the "auto" width
        (:func:`~sklearn_structlearn.penalties.auto_n_components`), an overcomplete
        code of ``min(8 * n_inputs, n_samples // 2, 1024)`` units (at least 16),
        rounded down to whole groups -- 512 on digits, 1024 on Fashion-MNIST, 71 on
        wine's 142 training rows. A list gives one value per layer and must have
        ``max_depth`` entries; this holds for every per-layer parameter below.
    group_size : int or list, default=1
        Units per pooling group; must divide ``n_components``. 1 means no pooling
        structure (plain sparse coding, the default: the setting the measurements
        behind the "auto" rules were made with, see the results page).
    alpha : float, "auto" or list, default="auto"
        Code (group sparsity) penalty of each layer. ``"auto"``: the largest penalty at
        which the codes of a subsample of the layer's inputs on atoms drawn from them
        still explain 90% of its variance, with at most 48 active units per row
        (:func:`~sklearn_structlearn.penalties.auto_alpha`, the same rule as
        ``GroupSparseCodingLayer(alpha="auto")``; the resolved values are in
        ``layers_[l].alpha_``). A number is read according to ``penalty_scale``.
    connectivity_alpha : float, "auto" or list, default="auto"
        Connectivity penalty on the units' input weights. ``0`` gives dense layers.
        ``"auto"`` is data-scaled (never zero on non-constant data): 0.04 times the
        code cost ``alpha * mean_i |A_ik|`` of the median unit, for atoms drawn from
        the layer's inputs
        (:func:`~sklearn_structlearn.penalties.auto_connectivity_alpha`, the same rule
        as ``GroupSparseCodingLayer(connectivity_alpha="auto")``). Resolved values are in
        ``layers_[l].connectivity_alpha_``.
    penalty_scale : {"absolute", "relative"}, default="absolute"
        How numeric penalties are read (passed to every layer, see
        :class:`~sklearn_structlearn.GroupSparseCodingLayer`): ``"relative"`` reads
        ``alpha`` as a fraction of the root-mean-square norm of the layer's input rows
        and ``connectivity_alpha`` as the ratio to the code cost of the median unit --
        scale free, so ``GridSearchCV`` over them needs no pre-fit.
    depth_tol : float, default=0.01
        Minimum improvement for a layer beyond the first to be kept: the rise of the
        decodable fraction of the input's variance (``depth_criterion="information"``),
        the drop of the redundancy (``"redundancy"``) or the relative entropy gain
        (``"entropy"``). ``-numpy.inf`` stacks ``max_depth`` layers, ``numpy.inf``
        keeps one.
    depth_criterion : {"information", "redundancy", "entropy"}, default="information"
        What a new layer must improve. ``"information"``: the fraction of the
        preprocessed input's variance that a ridge read-out of the layer's outputs
        recovers on held-out rows
        (``_information.decoding_information``) must grow by
        ``depth_tol`` -- it does not grow with the width or density of the outputs by
        construction. ``"redundancy"``: the redundancy of the
        outputs (:func:`~sklearn_structlearn.entropy.output_redundancy`) must drop by
        ``depth_tol`` (absolute, it is a fraction). ``"entropy"``: the output entropy
        (``entropy_estimator``) must grow by ``depth_tol`` relative.
    entropy_estimator : {"binned", "knn"} or callable, default="binned"
        Entropy estimator of the outputs (``entropies_`` and the ``"entropy"``
        criterion), see :func:`~sklearn_structlearn.output_entropy`.
    preprocessing : {"standardize", "zca"} or None, default="zca"
        Fixed affine map applied first (``preprocess_mean_``, ``preprocess_matrix_``):
        ``"zca"`` centres and ZCA-whitens with the regularised covariance (see
        ``zca_epsilon``); ``"standardize"`` centres each feature and divides it by
        ``sqrt(var_j + 0.01 * median_j var_j)`` -- its standard deviation, except for
        almost constant features, which would otherwise become rare huge values
        (constant features are only centred); ``None`` leaves the data as they are.
        ``"zca"`` is the default because decorrelated inputs give local, alive units
        on images (see the results page); it costs a ``n_features x n_features``
        eigendecomposition, use ``"standardize"`` for thousands of features. The map
        is a :class:`~sklearn_structlearn.preprocessing.Preprocessor`
        (``preprocessor_``).
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
    positive_code : bool, default=True
        Constrain every layer's codes to be non-negative (measured on digits: 0.984
        against 0.978 signed at 512 units).
    transform_algorithm : {"threshold", "lasso"}, default="threshold"
        How every layer codes its inputs once its dictionary is learned (see
        :class:`~sklearn_structlearn.GroupSparseCodingLayer`): the feed-forward
        ``prox(x D^T)`` at the layer's ``alpha_`` (one matrix product per layer), or the
        codes that minimise the layer's objective (``"lasso"``). The dictionaries are
        learned the same way (from the objective's codes); the outputs a layer hands to
        the next, and that the depth rule measures, are coded this way. The default is
        the principle's choice: the feed-forward outputs keep more of the input's
        information -- a linear read-out recovers 92%, 91%, 94% and 58% of the input's
        variance from them on held-out rows of breast_cancer, wine, digits and
        Fashion-MNIST, against 52%, 64%, 81% and 50% from the lasso codes -- and code
        training and new rows alike (the lasso codes of the training rows are 2-2.5x
        sparser than those of new rows: the dictionary memorises them). Read by a
        logistic regression (``benchmarks/RESULTS.md`` section 12): breast_cancer 0.965
        against 0.944 (three seeds: 0.969 against 0.945), Fashion-MNIST 0.884 against
        0.881, digits 0.985 against 0.987, wine 0.972 against 0.983 (three seeds: 0.968
        against 0.976).
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
        ``2`` also the layers' own progress. With tqdm installed, bars with the time
        left are drawn as well, on a terminal or in Jupyter only.

    Attributes
    ----------
    layers_ : list of GroupSparseCodingLayer
        The fitted layers that were kept, bottom first.
    n_layers_ : int
        Number of layers kept (the learned depth).
    entropies_ : ndarray of shape ``(n_layers_ + 1,)``
        Output entropy (bits, ``entropy_estimator``; the binned default is the sum of
        the outputs' marginal entropies, low for sparse outputs by construction, see
        Notes) of the preprocessed input, then of the outputs of every kept layer, on
        the training data. ``decodable_variances_`` says how much of the input each
        layer keeps.
    candidate_entropies_ : ndarray of shape ``(n_layers_ + 1,)`` or ``(n_layers_ + 2,)``
        ``entropies_`` followed, when the depth rule rejected a layer, by the entropy
        of that rejected layer's outputs.
    redundancies_ : ndarray of shape ``(len(candidate_entropies_),)``
        Redundancy (:func:`~sklearn_structlearn.entropy.output_redundancy`) of the
        preprocessed input, then of the outputs of every tried layer (the rejected
        one last, as in ``candidate_entropies_``).
    entropy_gains_ : ndarray of shape ``(len(candidate_entropies_) - 1,)``
        Relative gain of every tried layer over the layer below
        (:func:`~sklearn_structlearn.entropy_gain`); the first entry, the
        gain of layer 1 over the preprocessed input, is informative only (the first
        layer is always kept).
    n_iter_ : int
        Largest number of alternating iterations run by a kept layer (each layer's own
        count is ``layers_[l].n_iter_``).
    decodable_variances_ : ndarray of shape ``(len(candidate_entropies_) - 1,)``
        For every tried layer (the rejected one last), the fraction of the preprocessed
        input's variance that a linear read-out of its outputs recovers on held-out
        rows (``_information.decoding_information``): how
        much of its input the representation keeps in readable form.
    stop_reason_ : str
        Why stacking stopped: ``"max_depth"``, ``"information"`` (the tried layer did
        not raise the decodable variance enough), ``"redundancy"`` (it did not lower
        the redundancy enough) or ``"entropy_gain"`` (it did not raise the entropy
        enough), after the ``depth_criterion``.
    structure_ : list of LayerStructure
        Per kept layer: number of inputs, units and groups, connectivity mask (units x
        inputs), fan-in statistics and, with ``image_shape``, the receptive fields on
        the input pixels (traced through the layers below for deep layers), their
        locality ratio (median over units of the spatial spread of a unit's connection
        mass against random masks of the same fan-in; < 1 means local) and the pooling
        invariance (how much the pooled outputs change under one-pixel shifts of the
        raw images against the layer's unpooled codes, on 256 training images; not
        measured when ``pooling=None``).
    preprocessor_ : Preprocessor
        The fitted preprocessing.
    preprocess_mean_ : ndarray of shape (n_features_in,)
        Mean subtracted by the preprocessing (zeros when ``preprocessing=None``).
    preprocess_matrix_ : ndarray of shape (n_features_in, n_features_in) or None
        Linear map of the preprocessing: inputs of the first layer are
        ``(X - preprocess_mean_) @ preprocess_matrix_`` (``None``: identity).
    image_shape_ : tuple of int or None
        Validated ``image_shape`` as ``(height, width, channels)``.
    n_samples_seen_ : int
        Rows the learner was fitted on (with :meth:`fit_stream`, rows in the stream).
    n_batches_ : int
        Batches per pass over the data (1 for :meth:`fit`).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    GroupSparseCodingLayer : one layer.
    sklearn_structlearn.output_entropy : the entropy estimators.
    sklearn_structlearn.structure.describe_structure : the summary table.

    Notes
    -----
    **What the depth rule compares.** A deterministic layer cannot add information:
    with any consistent estimator the information of layer ``l + 1``'s outputs about
    the input is at most that of layer ``l``'s, and pooling drops the variation inside
    groups on purpose. What a deeper layer can do is make *more of it readable* by the
    next step (a linear read-out): the default rule (``"information"``) keeps layer
    ``l + 1`` when a ridge read-out of its outputs recovers at least ``depth_tol`` more
    of the preprocessed input's variance, on held-out rows, than one of layer ``l``'s.
    Since ``transform`` hands on the top layer only, this compares what the next step
    would get. The measure is not rewarded by dense or wide outputs (the read-out is
    scored on rows it was not fitted on, its penalty chosen against overfitting); the
    binned ``entropies_`` are (a sum of marginal entropies), which is why they are
    reported, not used, by default.

    **What transform hands on.** The top kept layer's outputs (not the input beside
    them): on images the codes alone classify better than codes and input together
    (lasso codes: digits 0.987 vs 0.976 on the features benchmark; Fashion-MNIST 0.863 vs
    0.861 in a research run); on small tables the input beside the lasso codes read up to
    1 point better (breast_cancer 0.954 vs 0.944) -- a
    ``FeatureUnion`` with ``"passthrough"`` gives it (see the results page).

    ``depth_criterion="redundancy"`` reduces *redundancy* (Barlow's form of
    the efficient coding principle): when units of layer ``l`` tend to be active
    together (parts of one object), layer ``l + 1`` can merge them into fewer, more
    independent outputs. That rule measures, for every representation, its
    redundancy ``R = TC / H``: ``H`` is the sum over outputs of their binned entropies
    (a zero bin plus 10 equal-frequency bins, see
    :func:`~sklearn_structlearn.output_entropy`), ``TC`` the Gaussian total
    correlation ``-1/2 log2 det C`` of the outputs' correlation matrix, bias-corrected
    (:func:`~sklearn_structlearn.entropy.total_correlation`); ``R`` is the fraction of
    the summed bits that the outputs say twice. Layer ``l >= 2`` is kept when
    ``R_{l-1} - R_l >= depth_tol``. Since ``R >= 0``, a representation whose redundancy
    is already below ``depth_tol`` is the top one: the depth stops where there is
    nothing left to merge. The depths the rule picks on planted structures, digits,
    Fashion-MNIST and natural patches are on the results page of the documentation.

    ``depth_criterion="entropy"`` is the older rule: layer ``l`` is kept when its
    output entropy (``entropy_estimator``) grows by ``depth_tol`` relative,
    ``(H_l - H_{l-1}) / |H_{l-1}|``. With the binned estimator (an upper bound of the
    joint entropy, exact for independent outputs) this only happens when a layer
    exposes its information in more, or more active, outputs.

    **"auto" penalties.** Every layer is a
    :class:`~sklearn_structlearn.GroupSparseCodingLayer` given the learner's ``alpha``
    and ``connectivity_alpha``; "auto" values are resolved by the layer with the
    package's one rule per penalty (:mod:`sklearn_structlearn.penalties`), on its own
    inputs, exactly as a standalone layer would.

    Examples
    --------
    >>> from sklearn_structlearn import DeepStructureLearner
    >>> from sklearn_structlearn.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> learner = DeepStructureLearner(max_depth=2, n_components=64, image_shape=(8, 8),
    ...                                max_iter=10, random_state=0)
    >>> Z = learner.fit_transform(X[:500])
    >>> Z.shape[1] == learner.layers_[-1].n_groups_
    True
    >>> len(learner.entropies_) == learner.n_layers_ + 1
    True
    >>> learner.get_feature_names_out()[:2]
    array(['layer1_group0', 'layer1_group1'], dtype=object)
    """

    _parameter_constraints = {
        "max_depth": [int_in(1)],
        **{name: constraints + [list, tuple, np.ndarray]
           for name, constraints in _PER_LAYER.items()},
        # +-inf are meaningful: "never add a layer" / "always stack to max_depth"
        "depth_tol": [real_in(None, None, closed="both")],
        "depth_criterion": [StrOptions(set(DEPTH_CRITERIA))],
        "penalty_scale": PENALTY_SCALE,
        "entropy_estimator": [StrOptions({"binned", "knn"}), callable],
        "preprocessing": [StrOptions({"standardize", "zca"}), None],
        "zca_epsilon": [real_in(0)],
        "image_shape": ["array-like", None],
        "pooling": POOLING,
        "positive_code": ["boolean"],
        "transform_algorithm": TRANSFORM_ALGORITHM,
        "max_iter": [int_in(1)],
        "tol": [real_in(0)],
        "random_state": ["random_state"],
        "n_jobs": N_JOBS,
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        max_depth=1,
        *,
        n_components=None,
        group_size=1,
        alpha="auto",
        connectivity_alpha="auto",
        penalty_scale="absolute",
        depth_tol=0.01,
        depth_criterion="information",
        entropy_estimator="binned",
        preprocessing="zca",
        zca_epsilon=1.0,
        image_shape=None,
        pooling="l2",
        positive_code=True,
        transform_algorithm="threshold",
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
        self.penalty_scale = penalty_scale
        self.depth_tol = depth_tol
        self.depth_criterion = depth_criterion
        self.entropy_estimator = entropy_estimator
        self.preprocessing = preprocessing
        self.zca_epsilon = zca_epsilon
        self.image_shape = image_shape
        self.pooling = pooling
        self.positive_code = positive_code
        self.transform_algorithm = transform_algorithm
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------------ validation
    def _per_layer(self, name):
        """One value per layer from a scalar or a list of ``max_depth`` values."""
        value = getattr(self, name)
        if not _is_per_layer(value):
            return [value] * self.max_depth
        values = list(value)
        if len(values) != self.max_depth:
            raise ValueError(
                f"{name} has {len(values)} per-layer values but max_depth={self.max_depth}; "
                f"give a single value for every layer or a list of exactly {self.max_depth}."
            )
        validate_named({f"{name}[{i}]": _PER_LAYER[name] for i in range(len(values))},
                       {f"{name}[{i}]": v for i, v in enumerate(values)}, type(self).__name__)
        return values

    def _check_params(self, n_features):
        """What ``_parameter_constraints`` cannot say: per-layer lists, image shape.

        Returns the per-layer values (``n_components``, ``group_size``, ``alpha``,
        ``connectivity_alpha``: lists of ``max_depth``) and the image shape as
        ``(height, width, channels)`` or None.
        """
        params = {name: self._per_layer(name) for name in _PER_LAYER}
        for depth, (nc, gs) in enumerate(zip(params["n_components"], params["group_size"])):
            if nc is not None and nc % gs:
                raise ValueError(
                    f"Layer {depth + 1}: n_components={nc} is not a multiple of "
                    f"group_size={gs}; each pooling group needs group_size units."
                )
        shape = self.image_shape
        params["image_shape"] = None
        if shape is not None:
            if not all(isinstance(s, numbers.Integral) and not isinstance(s, (bool, np.bool_))
                       for s in shape):
                raise TypeError(
                    f"image_shape must be a tuple of ints (height, width) or (height, width, "
                    f"channels), got {shape!r}."
                )
            try:
                params["image_shape"] = _check_image_shape(shape, n_features)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"Invalid image_shape: {exc}") from exc
        return params

    def _widths(self, params, n_features, n_samples):
        """Units of every layer: the given ones, or the "auto" width
        (:func:`~sklearn_structlearn.penalties.auto_n_components`) of the inputs the layers
        below give it, for ``n_samples`` rows (None: unknown, no cap by the rows)."""
        widths, n_inputs = [], n_features
        for units, group_size in zip(params["n_components"], params["group_size"]):
            if units is None:
                units = auto_n_components(n_inputs, n_samples, group_size)
            widths.append(int(units))
            n_inputs = units // group_size if self.pooling is not None else units
        return widths

    def _check_memory(self, params, n_features, n_rows, itemsize, n_samples=None):
        """Refuse, before any work, a stack that cannot fit in memory: the preprocessing,
        then every layer on the inputs the layers below give it (lower bounds, see
        :func:`~sklearn_structlearn.layer.check_fit_memory`)."""
        check_preprocessing_memory(self.preprocessing, n_features)
        n_inputs = n_features
        widths = self._widths(params, n_features, n_samples)
        for depth, (units, given, group_size) in enumerate(
                zip(widths, params["n_components"], params["group_size"]), start=1):
            check_fit_memory(n_rows, n_inputs, units, itemsize,
                             f"layer {depth} of {type(self).__name__} "
                             f"(n_components={given!r})")
            n_inputs = units // group_size if self.pooling is not None else units

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # ------------------------------------------------------------------ preprocessing
    @property
    def preprocess_mean_(self):
        """Mean subtracted by the preprocessing (``preprocessor_.mean_``)."""
        return self.preprocessor_.mean_

    @property
    def preprocess_matrix_(self):
        """Linear map of the preprocessing (``preprocessor_.matrix_``; None: identity)."""
        return self.preprocessor_.matrix_

    def _new_preprocessor(self):
        return Preprocessor(self.preprocessing, zca_epsilon=self.zca_epsilon)

    def _preprocess(self, X):
        """Apply the fitted affine preprocessing in the dtype of ``X`` (no checks)."""
        return self.preprocessor_.apply(X)

    # ------------------------------------------------------------------ helpers
    def _entropy(self, Z):
        return output_entropy(Z, self.entropy_estimator, random_state=0)

    def _entropy_and_redundancy(self, Z):
        """``(self._entropy(Z), output_redundancy(Z))``, the binned entropy computed once."""
        binned = output_entropy(Z, "binned")
        h = binned if self.entropy_estimator == "binned" else self._entropy(Z)
        return h, redundancy_given_entropy(Z, binned)

    def _log(self, message):
        if self.verbose:
            write_line(f"[{type(self).__name__}] {message}")

    def _forward(self, X, n_layers, *, codes=False):
        """Outputs of layer ``n_layers`` for raw inputs (its raw codes if ``codes``)."""
        Z = self._preprocess(X)
        for layer in self.layers_[:n_layers - 1]:
            Z = layer.transform(Z)
        last = self.layers_[n_layers - 1]
        return last.encode(Z) if codes else last.transform(Z)

    def _new_layer(self, params, depth, seed):
        """The (unfitted) layer ``depth`` (1-based) of the stack."""
        i = depth - 1
        return GroupSparseCodingLayer(
            n_components=params["widths"][i],
            group_size=params["group_size"][i],
            alpha=params["alpha"][i],
            connectivity_alpha=params["connectivity_alpha"][i],
            penalty_scale=self.penalty_scale,
            pooling=self.pooling,
            positive_code=self.positive_code,
            transform_algorithm=self.transform_algorithm,
            max_iter=self.max_iter,
            tol=self.tol,
            random_state=int(seed),
            n_jobs=self.n_jobs,
            verbose=max(self.verbose - 1, 0),
        )

    # ------------------------------------------------------------------ fitting
    @fit_context
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

    @fit_context
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
        # set_output wraps fit_transform too (pandas output); only the array is ours.
        return self._fit(X)

    def _fit(self, X):
        """In-memory fit: the data checked, the preprocessing fitted, the layers stacked."""
        if sp.issparse(X):
            raise TypeError(
                f"{type(self).__name__}.fit does not accept sparse X (got a {X.format} "
                "matrix): the preprocessing centres the data, which makes it dense. Densify "
                "it (X.toarray()), use fit_stream with sparse batches (densified one batch at "
                "a time), or fit a GroupSparseCodingLayer, which accepts sparse input."
            )
        check_numeric_dtype(X, "X")
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        check_magnitude(X, "X")
        params = self._check_params(X.shape[1])
        self._check_memory(params, X.shape[1], X.shape[0], X.dtype.itemsize, X.shape[0])
        self.n_samples_seen_ = X.shape[0]
        self.n_batches_ = 1
        self.preprocessor_ = self._new_preprocessor().fit(X)
        return self._stack(X, params, _fit_in_memory)

    @fit_context
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
        validate_named({"n_passes": [int_in(1)], "n_held": [int_in(2)]},
                       {"n_passes": n_passes, "n_held": n_held},
                       f"{type(self).__name__}.fit_stream")
        checked = {"params": None}

        def check_batch(batch, first_pass):
            """Checks of one batch; the first batch also sets the features and checks the
            parameters that depend on them (bad ones fail before a whole pass)."""
            check_numeric_dtype(batch, "batch")
            kwargs = dict(dtype=[np.float64, np.float32], accept_sparse=("csr", "csc"),
                          ensure_min_samples=0)
            if first_pass:  # sets, then checks, n_features_in_ and feature_names_in_
                first = checked["params"] is None
                batch = validate_data(self, batch, **kwargs, reset=first)
                check_magnitude(batch, "batch")
                if first:
                    checked["params"] = self._check_params(batch.shape[1])
                    itemsize = np.dtype(batch.dtype).itemsize
                    check_memory(
                        n_held * batch.shape[1] * itemsize,
                        f"fit_stream(n_held={n_held}): a held sample of {n_held} rows x "
                        f"{batch.shape[1]} features ({batch.dtype})",
                        "hold fewer rows (n_held).")
                    self._check_memory(checked["params"], batch.shape[1],
                                       min(n_held, batch.shape[0]), itemsize)
                return batch
            batch = check_array(batch, **kwargs)
            check_magnitude(batch, "batch")
            if batch.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"batch has {batch.shape[1]} features, but the stream's first "
                    f"pass had {self.n_features_in_}: the batches callable must "
                    "return the same data at every call."
                )
            return batch

        stream = BatchStream(batches, 1 + self.max_depth * n_passes, check_batch)
        rng = check_random_state(self.random_state)
        held_rng = np.random.RandomState(rng.randint(np.iinfo(np.int32).max))

        # 1. preprocessing statistics and the held sample, in one pass
        start = time.perf_counter()
        moments, held, n_batches = first_pass(
            stream, full_covariance=self.preprocessing == "zca", n_held=n_held,
            random_state=held_rng)
        self.preprocessor_ = self._new_preprocessor().fit_moments(
            moments.mean.copy(), moments.second_moment())
        self.n_samples_seen_ = int(moments.n)
        self.n_batches_ = n_batches
        self._log(
            f"stream: {moments.n} rows x {held.shape[1]} features in {n_batches} batches, "
            f"held sample {held.shape[0]} rows [{time.perf_counter() - start:.1f}s]"
        )

        # 2. each layer learned online from the stream sent through the layers below;
        # 3. the depth rule and the structure on the held sample, as fit does on X
        fitter = StreamLayerFitter(stream, self._preprocess, n_passes=n_passes,
                                   n_batches=n_batches, name=type(self).__name__,
                                   verbose=self.verbose, log=self._log)
        self._stack(held, checked["params"], fitter)
        return self

    def _stack(self, X, params, fit_layer):
        """The stacking loop and the depth rule, whatever the way a layer is fitted.

        ``X`` are the (checked) raw training rows -- all of them, or the held sample of a
        stream -- and ``fit_layer(layer, Z, below)`` fits ``layer`` whose inputs on ``X``
        are ``Z`` (``below``: the layers kept so far). Sets every fitted attribute but the
        preprocessing and returns the outputs of the top kept layer on ``X``.
        """
        self.image_shape_ = params["image_shape"]
        params = {**params, "widths": self._widths(params, X.shape[1], self.n_samples_seen_)}
        max_depth = self.max_depth
        rng = check_random_state(self.random_state)
        # The structure measurements get their own seed, drawn first, so that they use
        # the same images whatever max_depth is.
        structure_seed = rng.randint(np.iinfo(np.int32).max)
        seeds = rng.randint(np.iinfo(np.int32).max - 1, size=max_depth)
        start = time.perf_counter()

        Z = X_in = self._preprocess(X)
        h, r = self._entropy_and_redundancy(Z)
        entropies, redundancies = [h], [r]
        # the input's variance that a linear read-out of each tried layer's outputs
        # recovers on held-out rows (what the "information" depth rule compares)
        decodable = []
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
                layer = self._new_layer(params, depth, seeds[depth - 1])
                fit_layer(layer, Z, layers)
                Z_next = layer.transform(Z)
                bar.update()
                h, r = self._entropy_and_redundancy(Z_next)
                # (fewer than 4 rows: nothing to hold out, not measured)
                r2 = (decoding_information(X_in, Z_next, random_state=0)[0]
                      if X_in.shape[0] >= 4 else np.nan)
                gain = entropy_gain(entropies[-1], h)
                # the score the depth rule asks a new layer to raise by depth_tol
                score = {"information": r2 - decodable[-1] if decodable else r2,
                         "redundancy": redundancies[-1] - r,
                         "entropy": gain}[self.depth_criterion]
                decodable.append(r2)
                keep = depth == 1 or score >= self.depth_tol
                gains.append(gain)
                fan_in = layer.connectivity_.sum(axis=1).mean()
                verdict = "kept" if keep else (
                    f"rejected ({self.depth_criterion} score {score:+.3f} < "
                    f"depth_tol={self.depth_tol:g})")
                self._log(
                    f"layer {depth}: {Z.shape[1]} inputs -> {layer.n_components_} units in "
                    f"{layer.n_groups_} groups of {layer.group_size}, mean fan-in {fan_in:.1f}, "
                    f"input variance decodable {r2:.3f}, summed marginal entropy {h:.1f} "
                    f"bits, redundancy {r:.3f} "
                    f"(reduction {redundancies[-1] - r:+.3f}) "
                    f"{verdict} "
                    f"[{time.perf_counter() - t0:.1f}s]"
                )
                if not keep:
                    self.candidate_entropies_ = np.array(entropies + [h])
                    self.redundancies_ = np.array(redundancies + [r])
                    self.stop_reason_ = {"information": "information",
                                         "redundancy": "redundancy",
                                         "entropy": "entropy_gain"}[self.depth_criterion]
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
        self.decodable_variances_ = np.array(decodable)
        self.n_iter_ = max(layer.n_iter_ for layer in layers)
        self.structure_ = describe_layers(
            self.layers_, X, pooling=self.pooling, image_shape=self.image_shape_,
            codes_of=lambda X_raw, depth: self._forward(X_raw, depth, codes=True),
            random_state=np.random.RandomState(structure_seed))
        self._log(
            f"depth {self.n_layers_} ({self.stop_reason_}), total "
            f"{time.perf_counter() - start:.1f}s"
        )
        return outputs

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
        self._check_outputs_unchanged()
        check_numeric_dtype(X, "X")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        check_magnitude(X, "X")
        with thread_limits(self.n_jobs):
            return self._forward(X, self.n_layers_)

    # parameters the fitted layers' outputs follow (read again after fit)
    _OUTPUT_PARAMS = ("pooling", "transform_algorithm")

    def _check_outputs_unchanged(self):
        """``pooling`` is read after fit by :meth:`get_feature_names_out`; the outputs
        follow the fitted layers, whose pooling and coding cannot change without a new
        fit (a layer's outputs are what the layer above learned from)."""
        check_is_fitted(self)
        validate_named({name: self._parameter_constraints[name] for name in self._OUTPUT_PARAMS},
                       {name: getattr(self, name) for name in self._OUTPUT_PARAMS},
                       type(self).__name__)
        for name in self._OUTPUT_PARAMS:
            fitted = getattr(self.layers_[-1], name)
            if getattr(self, name) != fitted:
                raise ValueError(
                    f"{name}={getattr(self, name)!r} was set after fit, but the layers "
                    f"were fitted with {name}={fitted!r}: a layer's outputs are the inputs "
                    "the layer above learned from. Fit the learner again to change it."
                )

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
        self._check_outputs_unchanged()
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
            :func:`~sklearn_structlearn.structure.stack_summary`.
        """
        check_is_fitted(self)
        return stack_summary(self)

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

        self._check_outputs_unchanged()
        # The specs (layers, preprocess_mean_ / preprocess_matrix_) are read in one
        # place only: export.layer_specs_from_estimator.
        return estimator_to_torch(self, mode=mode, n_classes=n_classes, **kwargs)
