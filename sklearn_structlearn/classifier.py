"""A classifier whose network structure is learned without labels, then trained with them.

:class:`StructuredNetClassifier` chains the two halves of the method:

1. a structure learner (a :class:`~sklearn_structlearn.DeepStructureLearner`, the
   ``structure_learner`` parameter) learns the structure of the network -- connectivity
   masks, pooling groups, depth -- and its initial weights from ``X`` alone (no labels);
2. the structure is exported with ``to_torch(mode="feedforward", n_classes=...)`` (masked
   linear layers, learnable group thresholds, group pooling, a linear head) and trained
   with the labels by skorch's ``NeuralNetClassifier``, so that
   ``device``, callbacks, ``history_``, ``warm_start`` and ``partial_fit`` behave as a
   skorch user expects.

torch and skorch are optional dependencies (the ``torch`` extra): they are imported
inside ``fit`` / ``predict`` only, so this module imports without them.
"""

import copy
import os
import time
import warnings
from contextlib import contextmanager
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    unique_labels,
)
from sklearn.utils.validation import check_is_fitted, validate_data

from ._param_validation import (
    N_JOBS,
    HasMethods,
    StrOptions,
    fit_context_validating_nested,
    int_in,
    real_in,
)
from ._torch import import_torch
from ._validation import check_numeric_dtype
from .deep import DeepStructureLearner

__all__ = ["StructuredNetClassifier"]

# Rows sent through the float64 input stage at once (bounds the memory of a copy of X).
_FEATURE_CHUNK = 8192
# The input scale is a power of two 2**e, |e| <= this: 2**-e stays a normal float64.
_MAX_SCALE_EXPONENT = 1000


def _import_torch():
    """torch, skorch and the classifier's torch pieces, or an ImportError saying how to get them."""
    torch = import_torch("StructuredNetClassifier (a PyTorch network trained with skorch)",
                         with_skorch=True)
    from . import _classifier_torch

    return torch, _classifier_torch


@contextmanager
def _torch_threads(torch, n_jobs):
    """Run the block with ``n_jobs`` torch intra-op threads (None: leave torch's setting)."""
    if n_jobs is None:
        yield
        return
    n_cpus = os.cpu_count() or 1
    n_threads = max(n_cpus + 1 + n_jobs, 1) if n_jobs < 0 else n_jobs
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _check_input_dtype(X):
    """Refuse strings, bytes, complex, dates and durations before any conversion.

    ``check_numeric_dtype`` refuses strings and complex numbers; datetime64 /
    timedelta64 arrays and object arrays of strings (even numeric ones, ``"1.5"``) would
    otherwise be converted to floats silently.
    """
    check_numeric_dtype(X, "X")
    array = X if isinstance(X, np.ndarray) else None
    if array is None and isinstance(X, (list, tuple)):
        try:
            array = np.asarray(X)
        except ValueError:
            return  # ragged: validate_data reports the shape problem
    if array is None:
        dtypes = getattr(X, "dtypes", None)  # a DataFrame: check every column
        if dtypes is not None:
            kinds = {np.dtype(d).kind for d in dtypes if isinstance(d, np.dtype)}
            if kinds & set("mM"):
                raise TypeError(
                    "X must hold numbers; it has datetime64 / timedelta64 columns. Convert "
                    "them explicitly (e.g. to seconds) or drop them."
                )
        return
    if array.dtype.kind in "mM":
        raise TypeError(
            f"X must hold numbers, got an array of dtype {array.dtype}; convert the dates or "
            "durations explicitly (e.g. to seconds)."
        )
    if array.dtype.kind == "O" and any(isinstance(v, (str, bytes)) for v in array.flat):
        raise TypeError(
            "X must hold numbers; its object array holds strings. Convert it explicitly, "
            "e.g. X.astype(float), if they are numbers."
        )


def _scale_exponent(X):
    """``e`` such that ``X * 2**-e`` has a root mean square near 1 (0 for all-zero X).

    A power of two, so the scaling is exact; computed without squaring the raw values,
    which would overflow beyond ~1e154 or underflow below ~1e-154.
    """
    peak = float(np.max(np.abs(X))) if X.size else 0.0
    if peak == 0.0:
        return 0
    # in float64, by chunks of rows: no full-size float64 copy of a float32 X
    total = sum(float(np.sum(np.square(np.asarray(X[i:i + _FEATURE_CHUNK], np.float64) / peak)))
                for i in range(0, X.shape[0], _FEATURE_CHUNK))
    rms = peak * np.sqrt(total / X.size)
    exponent = int(np.round(np.log2(rms)))
    return int(np.clip(exponent, -_MAX_SCALE_EXPONENT, _MAX_SCALE_EXPONENT))


class StructuredNetClassifier(ClassifierMixin, BaseEstimator):
    """Neural network classifier whose structure is learned from the unlabeled data.

    ``fit`` runs in two stages:

    1. **Structure, without labels.** A clone of ``structure_learner`` (by default a
       :class:`~sklearn_structlearn.DeepStructureLearner`) is fitted on the training
       inputs: it learns the connectivity of every layer (which unit reads which
       input), the pooling groups and the depth, by stacked group sparse coding.
    2. **Weights, with labels.** The learned network is exported with
       ``to_torch(mode="feedforward", n_classes=n_classes)`` -- fixed preprocessing,
       masked linear layers initialised with the dictionaries, a learnable threshold
       per group, group pooling, a linear head (optionally preceded by batch
       normalisation and dropout) -- and trained end to end with cross-entropy by
       skorch's ``NeuralNetClassifier`` (``net_``). The
       connectivity masks are applied in the forward pass, so pruned connections stay
       exactly zero. A stratified ``validation_fraction`` of the training data is held
       out; training stops after ``n_iter_no_change`` epochs without a relative
       improvement of ``tol`` of the validation loss, and the weights of the best
       epoch are restored.

    The fixed first stage (the preprocessing of the structure learner) runs in float64
    on inputs scaled by an exact power of two, so data of any finite magnitude (1e40,
    1e-50) train as well as data at unit scale; the trained layers run in float32.

    Needs the optional dependencies torch and skorch
    (``pip install sklearn-structlearn[torch]``).

    Parameters
    ----------
    structure_learner : estimator, default=None
        Unsupervised estimator that learns the structure: it must have ``fit(X)`` and
        ``to_torch(mode="feedforward", n_classes=..., dtype=...)`` returning a module
        with a fixed ``preprocessing`` stage, the trainable ``layers`` and a linear
        ``head``: :class:`~sklearn_structlearn.DeepStructureLearner` (masked layers) or
        :class:`~sklearn_structlearn.sharing.SharedWeightLearner` (shared-weight,
        convolution-like layers on the input topology it recovers). It is cloned in
        ``fit``; its ``random_state`` is always drawn from the classifier's, and its
        ``n_jobs`` (when ``None``) and ``verbose`` (when 0) follow the classifier's.
        ``None`` uses ``DeepStructureLearner()``. Its parameters are reachable as
        ``structure_learner__<name>`` (e.g. in ``GridSearchCV``), also from the
        default: ``set_params(structure_learner__depth_tol=0.05)`` on a classifier
        with ``structure_learner=None`` sets ``DeepStructureLearner(depth_tol=0.05)``.
    max_structure_samples : int, default=None
        Learn the structure on at most this many training rows (a random subset);
        ``None`` uses all of them. The supervised training always uses every row.
    optimizer : {"adam", "adamw", "rmsprop", "sgd"} or torch optimizer class, \
            default="adam"
        Optimizer of the supervised stage; ``"sgd"`` has Nesterov momentum 0.9.
    learning_rate : float, default=3e-3
        Step size of the optimizer. On the digits 1e-2 converged in half the epochs to
        the same accuracy, but on Fashion-MNIST it was a point less accurate than 3e-3
        and 1e-3 (6,000 training images).
    encoder_learning_rate : float, default=None
        Step size of the structured layers (masked weights, biases, thresholds);
        ``None`` uses ``learning_rate``. A smaller value keeps the encoder closer to
        the unsupervised dictionaries while the head learns.
    weight_decay : float, default=0.0
        L2 penalty of the optimizer (pruned weights are zero and stay zero).
    batch_size : int, default=128
        Mini-batch size of the training.
    predict_batch_size : int, default=1024
        Rows per forward pass when predicting and on the validation split: bounds
        memory, does not change the results.
    max_epochs : int, default=200
        Maximum passes over the training data per ``fit``.
    validation_fraction : float, default=0.1
        Fraction of the training data held out (stratified when every class allows it)
        for early stopping and the choice of the best epoch. ``0`` disables it:
        training stops when the training loss stalls, and the last epoch is kept.
    n_iter_no_change : int, default=10
        Epochs without improvement before stopping.
    tol : float, default=1e-2
        Minimum relative decrease of the monitored loss (validation loss, or training
        loss without a validation split) counted as an improvement.
    batch_norm : bool, default=False
        Standardise the pooled outputs of the last structured layer
        (``BatchNorm1d``) before the linear head.
    dropout : float, default=0.2
        Dropout probability on the pooled outputs, before the linear head. On the
        digits (seeds 0-4, step 1e-2) 0.2 raised the worst test accuracy from 97.3% to
        97.8% and halved the epochs to convergence (the validation loss stops
        improving sooner).
    callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks (instances or ``(name, callback)`` pairs), run after
        skorch's defaults and the classifier's own (``early_stopping``,
        ``finite_loss``). ``fit`` uses copies; the fitted ones are in
        ``net_.callbacks_``.
    device : str, torch.device or None, default="cpu"
        Where the network is trained and run (``"cuda"``, ``"cuda:1"``...). A device
        that this machine does not have is refused with a ``ValueError`` before any
        work. ``None`` is skorch's "leave the module where it is".
    warm_start : bool, default=False
        When True and the classifier is fitted, ``fit`` continues training the
        current network (same structure, same classes) instead of learning a new one.
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the structure learner, the structure subset, the
        head's initialisation and the mini-batch order (torch's global random state is
        left untouched). Pass an int for reproducible fits (with the same number of
        threads).
    verbose : int, default=0
        ``1`` prints the stages and skorch's per-epoch table; the structure learner
        prints its own progress when its ``verbose`` is 0.
    n_jobs : int, default=None
        Threads of torch during ``fit`` and ``predict`` (torch's previous setting is
        restored afterwards), and of the structure learner when its own ``n_jobs`` is
        None; ``-1`` means all cores. ``None``: one torch thread (mini-batches of a few
        hundred rows gain nothing from more threads, which only synchronise: two were
        2-10 times slower on the digits on a 2-core machine) and the structure
        learner's own default.
    structure_params : dict, default=None
        Deprecated: use ``structure_learner=DeepStructureLearner(**structure_params)``
        (or ``structure_learner__<name>``). When given, the parameters are set on the
        structure learner, with a ``FutureWarning``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    structure_learner_ : estimator
        The fitted structure learner (learned depth, masks, groups, entropies).
    net_ : skorch.classifier.NeuralNetClassifier
        The skorch net that trained the structured layers and the head; its
        ``module_`` takes the outputs of ``input_stage_``.
    input_stage_ : torch.nn.Module
        The fixed float64 first stage (input scaling and preprocessing).
    module_ : torch.nn.Module
        The whole trained network, raw inputs to logits: ``input_stage_`` followed by
        ``net_.module_`` (in eval mode; its parameters are those of ``net_``).
    input_scale_ : float
        The power of two the inputs are multiplied by first.
    history_ : skorch.History
        skorch's per-epoch record (``history_[:, "valid_loss"]``...), of all the
        epochs run since the network was built.
    n_epochs_ : int
        Epochs run by the last ``fit``.
    best_epoch_ : int
        Epoch (counted in ``history_``) whose weights the network holds after the last
        ``fit`` with a validation split; the last epoch otherwise.
    fit_times_ : dict
        Seconds spent in the two stages of the last ``fit``: ``"structure_wall"``,
        ``"structure_cpu"``, ``"training_wall"``, ``"training_cpu"`` (CPU time of this
        process, all threads; the structure entries are 0 when the structure was
        reused).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    DeepStructureLearner : the unsupervised first stage.
    sklearn.neural_network.MLPClassifier : a fully connected network.

    Notes
    -----
    The defaults train to convergence on the 8x8 digits: 97.6-98.7% test accuracy
    (mean 98.0%; 75/25 splits, ``random_state`` 0-4) in about 12.5 s of CPU time on
    one core, 45% of it learning the structure, where ``MLPClassifier(100)`` gets
    97.3-98.0% (mean 97.8%) in the same run (``benchmarks/bench_digits.py``,
    ``benchmarks/RESULTS.md`` section 8b). A ``ConvergenceWarning`` says when the best
    epoch was the last one (the monitored loss was still improving): raise
    ``max_epochs`` or ``learning_rate``.

    As in skorch, a ``KeyboardInterrupt`` (Ctrl-C) during the supervised stage stops
    training early and keeps the best weights so far; during the structure stage it
    leaves the classifier as it was before ``fit``. A ``fit`` that fails leaves the
    classifier as it was.

    Saved classifiers are pickles: loading one (``pickle.load``, ``joblib.load``) runs
    code from the file, so load only files you trust.

    Examples
    --------
    >>> from sklearn.model_selection import train_test_split
    >>> from sklearn_structlearn import DeepStructureLearner, StructuredNetClassifier
    >>> from sklearn_structlearn.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    >>> clf = StructuredNetClassifier(
    ...     DeepStructureLearner(max_depth=1, n_components=64, max_iter=5),
    ...     max_epochs=30, random_state=0, n_jobs=1,
    ... ).fit(X_train, y_train)
    >>> clf.predict_proba(X_test[:2]).shape
    (2, 10)
    >>> clf.score(X_test, y_test) > 0.9
    True
    >>> clf.history_[-1, "epoch"] == clf.n_epochs_
    True
    """

    _parameter_constraints = {
        "structure_learner": [HasMethods(["fit", "to_torch"]), None],
        "max_structure_samples": [int_in(2), None],
        "optimizer": [StrOptions({"adam", "adamw", "rmsprop", "sgd"}), callable],
        "learning_rate": [real_in(0, closed="neither")],
        "encoder_learning_rate": [real_in(0, closed="neither"), None],
        "weight_decay": [real_in(0)],
        "batch_size": [int_in(1)],
        "predict_batch_size": [int_in(1)],
        "max_epochs": [int_in(1)],
        "validation_fraction": [real_in(0, 1)],
        "n_iter_no_change": [int_in(1)],
        "tol": [real_in(0)],
        "batch_norm": ["boolean"],
        "dropout": [real_in(0, 1)],
        "callbacks": [list, None],
        # a str, a torch.device or None: checked (with the machine's devices) in fit
        "device": "no_validation",
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "n_jobs": N_JOBS,
        "structure_params": [dict, None],
    }

    def __init__(
        self,
        structure_learner=None,
        *,
        max_structure_samples=None,
        optimizer="adam",
        learning_rate=3e-3,
        encoder_learning_rate=None,
        weight_decay=0.0,
        batch_size=128,
        predict_batch_size=1024,
        max_epochs=200,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-2,
        batch_norm=False,
        dropout=0.2,
        callbacks=None,
        device="cpu",
        warm_start=False,
        random_state=None,
        verbose=0,
        n_jobs=None,
        structure_params=None,
    ):
        self.structure_learner = structure_learner
        self.max_structure_samples = max_structure_samples
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.encoder_learning_rate = encoder_learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.predict_batch_size = predict_batch_size
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.callbacks = callbacks
        self.device = device
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.structure_params = structure_params

    # ------------------------------------------------------------------ parameters
    def set_params(self, **params):
        """Set the parameters of this estimator.

        Parameters
        ----------
        **params : dict
            Estimator parameters, including ``structure_learner__<name>`` when
            ``structure_learner`` is an estimator.

        Returns
        -------
        self : StructuredNetClassifier
            This estimator.
        """
        nested = sorted(key for key in params if key.startswith("structure_learner__"))
        if nested and params.get("structure_learner", self.structure_learner) is None:
            raise ValueError(
                f"Cannot set {nested[0]}: structure_learner is None (the default, sized to "
                "the data in fit). Pass the structure learner explicitly, e.g. "
                "StructuredNetClassifier(DeepStructureLearner()), to set its parameters."
            )
        return super().set_params(**params)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags

    def _structure_template(self, n_features):
        """The (unfitted) structure learner to fit: parameter, default, deprecated dict."""
        learner = self.structure_learner
        if learner is None:
            learner = DeepStructureLearner()
            # Small data get a small network: at most twice as many pooled outputs as
            # inputs, at most the learner's default width.
            width, group = learner.n_components, learner.group_size
            if isinstance(width, Integral) and isinstance(group, Integral):
                cap = 2 * group * n_features
                learner.set_params(n_components=min(width, cap))
        else:
            learner = clone(learner)
        if self.structure_params is not None:
            warnings.warn(
                "structure_params is deprecated and will be removed: pass "
                "structure_learner=DeepStructureLearner(**structure_params) instead (its "
                "parameters are then reachable as structure_learner__<name>).",
                FutureWarning, stacklevel=3,
            )
            valid = learner.get_params(deep=False)
            unknown = sorted(set(self.structure_params) - set(valid))
            if unknown:
                raise ValueError(
                    f"structure_params has unknown {type(learner).__name__} parameters "
                    f"{unknown}; valid ones are {sorted(valid)}."
                )
            learner.set_params(**self.structure_params)
        return learner

    def _torch_n_jobs(self):
        # Mini-batches of a few hundred rows through a network of this size gain nothing
        # from more threads, which only add synchronisation (see the n_jobs entry).
        return 1 if self.n_jobs is None else self.n_jobs

    def _log(self, message):
        if self.verbose:
            print(f"[{type(self).__name__}] {message}", flush=True)

    # ------------------------------------------------------------------ fitting
    @fit_context_validating_nested
    def fit(self, X, y):
        """Learn the structure from ``X``, then train the network with ``y``.

        With ``warm_start=True`` on a fitted classifier, the structure is kept and the
        current network is trained further (``y`` may only hold known classes).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs (e.g. flattened images).
        y : array-like of shape (n_samples,)
            Class labels (any hashable type: ints, strings...).

        Returns
        -------
        self : StructuredNetClassifier
            The fitted classifier.
        """
        continuing = bool(self.warm_start) and hasattr(self, "net_")
        return self._fit(X, y, continuing=continuing)

    @fit_context_validating_nested
    def partial_fit(self, X, y, classes=None):
        """Train the network for one epoch on ``(X, y)``.

        The first call learns the structure from this ``X`` and needs ``classes``
        (every label that will ever appear). Later calls continue training the same
        network. There is no validation split and no early stopping here: each call
        is one pass over the given rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs.
        y : array-like of shape (n_samples,)
            Class labels, all in ``classes``.
        classes : array-like of shape (n_classes,), default=None
            All the classes; required on the first call, checked on later ones.

        Returns
        -------
        self : StructuredNetClassifier
            The updated classifier.
        """
        return self._partial_fit(X, y, classes)

    def _validate(self, X, y, reset):
        _check_input_dtype(X)
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], ensure_min_samples=2,
                             reset=reset)
        check_classification_targets(y)
        return X, y

    def _fit(self, X, y, *, continuing):
        X, y = self._validate(X, y, reset=not continuing)
        template = None if continuing else self._structure_template(X.shape[1])
        if continuing:
            y_enc = self._encode_known(y)
        else:
            classes, y_enc = np.unique(y, return_inverse=True)
            if len(classes) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes in y; got "
                    f"only class {classes[0]!r}."
                )
        torch, parts = _import_torch()
        device = parts.check_device(self.device)
        split_seed, structure_seed, subset_seed, torch_seed = self._seeds(self.random_state)
        fraction = float(self.validation_fraction)
        if fraction > 0:
            X_train, X_val, y_train, y_val = self._split(X, y_enc, fraction, split_seed)
        else:
            X_train, X_val, y_train, y_val = X, None, y_enc, None

        times = {"structure_wall": 0.0, "structure_cpu": 0.0}
        if not continuing:
            self.classes_ = classes
            t0, c0 = time.perf_counter(), time.process_time()
            self._learn_structure(template, X_train, structure_seed, subset_seed,
                                  torch, parts, torch_seed)
            times = {"structure_wall": time.perf_counter() - t0,
                     "structure_cpu": time.process_time() - c0}
        t0, c0 = time.perf_counter(), time.process_time()
        F_train = self._features(X_train, torch)
        valid = None if X_val is None else (self._features(X_val, torch), y_val)
        net = self.net_ if not continuing else copy.deepcopy(self.net_)
        self._configure(net, parts, valid=valid)
        n_epochs = self._train(net, torch, device, torch_seed, F_train, y_train, epochs=None)
        times["training_wall"] = time.perf_counter() - t0
        times["training_cpu"] = time.process_time() - c0
        self.net_ = net
        self.fit_times_ = times
        self._after_training(n_epochs, validation=valid is not None)
        return self

    def _partial_fit(self, X, y, classes):
        first = not hasattr(self, "net_")
        if first and classes is None:
            _check_partial_fit_first_call(self, None)  # the standard error
        X, y = self._validate(X, y, reset=first)
        if first:
            template = self._structure_template(X.shape[1])
            labels = unique_labels(classes)
            if len(labels) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs at least 2 classes; classes={classes!r}."
                )
            self.classes_ = labels
        else:
            _check_partial_fit_first_call(self, classes)
        y_enc = self._encode_known(y)
        torch, parts = _import_torch()
        device = parts.check_device(self.device)
        _, structure_seed, subset_seed, torch_seed = self._seeds(self.random_state)
        times = {"structure_wall": 0.0, "structure_cpu": 0.0}
        if first:
            t0, c0 = time.perf_counter(), time.process_time()
            self._learn_structure(template, X, structure_seed, subset_seed, torch, parts,
                                  torch_seed)
            times = {"structure_wall": time.perf_counter() - t0,
                     "structure_cpu": time.process_time() - c0}
            net = self.net_
        else:
            net = copy.deepcopy(self.net_)
            # a different shuffle at every call: continue from the number of epochs run
            torch_seed = (torch_seed + len(net.history)) % np.iinfo(np.int32).max
        t0, c0 = time.perf_counter(), time.process_time()
        F = self._features(X, torch)
        self._configure(net, parts, valid=None, early_stopping=False)
        self._train(net, torch, device, torch_seed, F, y_enc, epochs=1)
        times["training_wall"] = time.perf_counter() - t0
        times["training_cpu"] = time.process_time() - c0
        self.net_ = net
        self.fit_times_ = times
        self.n_epochs_ = 1
        self.best_epoch_ = len(net.history)
        return self

    def _encode_known(self, y):
        """Indices of ``y`` in ``classes_``; an error naming any unknown label."""
        unknown = np.setdiff1d(unique_labels(y), self.classes_)
        if unknown.size:
            raise ValueError(
                f"y has labels {unknown.tolist()} that are not in classes_ "
                f"{self.classes_.tolist()}; a trained network cannot learn new classes "
                "(fit with warm_start=False to start over)."
            )
        return np.searchsorted(self.classes_, y)

    @staticmethod
    def _seeds(random_state):
        """Seeds of the validation split, structure learner, structure subset and torch."""
        rng = check_random_state(random_state)
        return [int(seed) for seed in rng.randint(np.iinfo(np.int32).max, size=4)]

    @staticmethod
    def _split(X, y, fraction, seed):
        """Stratified train/validation split (plain when a class is too small for it)."""
        n_val = int(np.ceil(fraction * X.shape[0]))
        if X.shape[0] - n_val < 2:
            # the structure learner needs 2 samples: say so here, not deep inside it
            raise ValueError(
                f"validation_fraction={fraction} leaves {X.shape[0] - n_val} training "
                f"samples out of {X.shape[0]}; at least 2 are needed."
            )
        counts = np.bincount(y)
        counts = counts[counts > 0]
        n_classes = counts.size
        stratify = y if (counts.min() >= 2 and n_classes <= n_val
                         and n_classes <= X.shape[0] - n_val) else None
        return train_test_split(X, y, test_size=n_val, random_state=seed, stratify=stratify)

    def _learn_structure(self, template, X, structure_seed, subset_seed, torch, parts,
                         torch_seed):
        """Fit the structure learner on ``X``, export it, build ``net_`` (untrained)."""
        exponent = _scale_exponent(X)
        if self.max_structure_samples is not None and X.shape[0] > self.max_structure_samples:
            rows = np.random.RandomState(subset_seed).choice(
                X.shape[0], size=self.max_structure_samples, replace=False)
            X = X[np.sort(rows)]
        X_scaled = np.ldexp(X, -exponent)  # exact: a power of two
        learner = template
        params = learner.get_params(deep=False)
        overrides = {}
        if "random_state" in params:
            overrides["random_state"] = structure_seed
        if "n_jobs" in params and params["n_jobs"] is None:
            overrides["n_jobs"] = self.n_jobs
        if "verbose" in params and not params["verbose"] and self.verbose:
            overrides["verbose"] = self.verbose
        learner.set_params(**overrides)
        self._log(f"learning the structure on {X_scaled.shape[0]} samples (no labels)")
        t0 = time.perf_counter()
        learner.fit(X_scaled)
        self._log(f"structure: {getattr(learner, 'n_layers_', '?')} layer(s) "
                  f"[{time.perf_counter() - t0:.1f}s]; training with labels")

        n_classes = len(self.classes_)
        # fork_rng: seeding the head's initialisation must not reset the caller's
        # global torch random state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed)
            module = learner.to_torch(mode="feedforward", n_classes=n_classes,
                                      dtype=torch.float64)
        # The fixed stage stays in float64; the trained layers and head go to float32.
        preprocessing = module.preprocessing
        module.preprocessing = torch.nn.Identity()
        module = module.float()
        self._add_head_regularisers(module, torch)
        self.structure_learner_ = learner
        self.input_scale_ = float(np.ldexp(1.0, -exponent))
        self.input_stage_ = parts.InputStage(self.input_scale_, preprocessing).eval()
        self.net_ = self._make_net(module, n_classes, parts, torch)

    def _add_head_regularisers(self, module, torch):
        """Put batch normalisation and dropout between the pooled outputs and the head."""
        if not self.batch_norm and not self.dropout:
            return
        linear = module.head
        parts = []
        if self.batch_norm:
            parts.append(torch.nn.BatchNorm1d(linear.in_features, dtype=linear.weight.dtype))
        if self.dropout:
            parts.append(torch.nn.Dropout(float(self.dropout)))
        module.head = torch.nn.Sequential(*parts, linear)

    def _make_net(self, module, n_classes, parts, torch):
        from skorch import NeuralNetClassifier

        if isinstance(self.optimizer, str):
            optimizer, optimizer_kwargs = parts.OPTIMIZERS[self.optimizer]
        else:
            optimizer, optimizer_kwargs = self.optimizer, {}
        kwargs = {f"optimizer__{k}": v for k, v in optimizer_kwargs.items()}
        if self.weight_decay:
            kwargs["optimizer__weight_decay"] = float(self.weight_decay)
        if self.encoder_learning_rate is not None:
            # skorch parameter groups by name: every parameter of the structured layers
            kwargs["optimizer__param_groups"] = [
                ("layers.*", {"lr": float(self.encoder_learning_rate)})]
        return NeuralNetClassifier(
            module,
            criterion=torch.nn.CrossEntropyLoss,
            optimizer=optimizer,
            lr=float(self.learning_rate),
            max_epochs=int(self.max_epochs),
            batch_size=int(self.batch_size),
            dataset=parts.BatchDataset,
            iterator_train__shuffle=True,
            iterator_train__collate_fn=parts.whole_batch,
            iterator_valid__collate_fn=parts.whole_batch,
            iterator_valid__batch_size=int(self.predict_batch_size),
            train_split=None,
            classes=list(range(n_classes)),
            verbose=int(self.verbose),
            device=self.device,
            **kwargs,
        )

    def _configure(self, net, parts, *, valid, early_stopping=True):
        """Set the validation data, the callbacks and the budget of the next training."""
        from skorch.callbacks import EarlyStopping
        from skorch.helper import predefined_split

        callbacks = [("finite_loss", parts.FiniteTrainLoss())]
        if early_stopping:
            monitor = "valid_loss" if valid is not None else "train_loss"
            callbacks.insert(0, ("early_stopping", EarlyStopping(
                monitor=monitor, patience=int(self.n_iter_no_change),
                threshold=float(self.tol), threshold_mode="rel",
                load_best=valid is not None, sink=print)))
        # copies: fitting must not change the parameter (the fitted callbacks are in
        # net_.callbacks_)
        callbacks += copy.deepcopy(list(self.callbacks or []))
        train_split = None
        if valid is not None:
            train_split = predefined_split(
                parts.BatchDataset(valid[0], np.asarray(valid[1], np.int64)))
        net.set_params(train_split=train_split, max_epochs=int(self.max_epochs),
                       verbose=int(self.verbose))
        # (not through set_params, which re-initialises the old callbacks first)
        net.callbacks = callbacks
        if net.initialized_:
            net.initialize_callbacks()

    def _train(self, net, torch, device, torch_seed, F, y, *, epochs):
        """Train ``net`` on features ``F`` (seeded, threads pinned, global RNG untouched)."""
        n_train = F.shape[0]
        # BatchNorm cannot train on a last mini-batch of one row
        # (set as an attribute: skorch's set_params refuses iterator parameters on an
        # initialised net)
        net.iterator_train__drop_last = (bool(self.batch_norm)
                                         and n_train % int(self.batch_size) == 1)
        devices = [device.index or 0] if device is not None and device.type == "cuda" else []
        y = np.asarray(y, dtype=np.int64)
        with _torch_threads(torch, self._torch_n_jobs()), torch.random.fork_rng(devices=devices):
            torch.manual_seed(torch_seed)
            if not net.initialized_:
                net.initialize()
            n_before = len(net.history)
            if epochs is None:
                net.partial_fit(F, y)
            else:
                net.partial_fit(F, y, epochs=epochs)
        net.module_.eval()
        # The validation rows must not travel with the saved model.
        net.train_split = None
        return len(net.history) - n_before

    def _after_training(self, n_epochs, *, validation):
        """``n_epochs_`` / ``best_epoch_`` from the history; warn when still improving."""
        net = self.net_
        n_total = len(net.history)
        stopper = dict(net.callbacks_).get("early_stopping")
        best = getattr(stopper, "best_epoch_", 0) or n_total
        self.n_epochs_ = n_epochs
        self.best_epoch_ = best if validation else n_total
        if best == n_total and n_epochs >= int(self.max_epochs):
            monitored = "validation" if validation else "training"
            warnings.warn(
                f"{type(self).__name__}: the {monitored} loss was still improving at the "
                f"last of max_epochs={self.max_epochs} epochs; raise max_epochs (or "
                "learning_rate) for a converged fit.",
                ConvergenceWarning, stacklevel=3,
            )

    # ------------------------------------------------------------------ predicting
    def _features(self, X, torch):
        """Outputs of the float64 input stage, as a float32 array (in chunks)."""
        stage = self.input_stage_
        out = None
        with torch.no_grad():
            for start in range(0, X.shape[0], _FEATURE_CHUNK):
                chunk = stage(torch.from_numpy(np.ascontiguousarray(
                    X[start:start + _FEATURE_CHUNK]))).numpy()
                if out is None:
                    out = np.empty((X.shape[0], chunk.shape[1]), dtype=chunk.dtype)
                out[start:start + chunk.shape[0]] = chunk
        return out

    def _logits(self, X):
        check_is_fitted(self)
        _check_input_dtype(X)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        torch, _ = _import_torch()
        batch = int(self.predict_batch_size)
        # The module itself rather than skorch's forward: a DataLoader would draw a seed
        # from torch's global random state at every call.
        module = self.net_.module_.eval()
        device = next(module.parameters()).device
        logits = []
        with _torch_threads(torch, self._torch_n_jobs()), torch.no_grad():
            for start in range(0, X.shape[0], batch):
                features = torch.from_numpy(self._features(X[start:start + batch], torch))
                logits.append(module(features.to(device)).cpu())
        return torch.cat(logits).double()

    def predict_proba(self, X):
        """Class probabilities (softmax of the network's outputs).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_``; rows sum to 1.
        """
        # softmax in float64 so that rows sum to 1 to double precision
        return self._logits(X).softmax(dim=1).numpy()

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba` (computed stably from the logits).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities in the order of ``classes_``.
        """
        return self._logits(X).log_softmax(dim=1).numpy()

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        indices = self._logits(X).argmax(dim=1).numpy()  # checks fitted first
        return self.classes_[indices]

    # ------------------------------------------------------------------ inspecting
    @property
    def history_(self):
        """skorch's per-epoch record of the network (``net_.history``)."""
        check_is_fitted(self)
        return self.net_.history

    @property
    def module_(self):
        """The whole network, raw inputs to logits (shares ``net_``'s parameters)."""
        check_is_fitted(self)
        torch, _ = _import_torch()
        core = self.net_.module_
        device = next(core.parameters()).device
        stage = self.input_stage_ if device.type == "cpu" else (
            copy.deepcopy(self.input_stage_).to(device))
        return torch.nn.Sequential(stage, core).eval()

    def n_parameters(self, nonzero=False):
        """Number of trainable parameters of the network.

        Parameters
        ----------
        nonzero : bool, default=False
            Count only connections that exist: masked-out weights are excluded.

        Returns
        -------
        n : int
            Number of parameters (connections that exist, with ``nonzero=True``).
        """
        check_is_fitted(self)
        total = 0
        for module in self.net_.module_.modules():
            mask = getattr(module, "mask", None)
            for name, param in module.named_parameters(recurse=False):
                if nonzero and name == "weight" and mask is not None and mask.shape == param.shape:
                    total += int(mask.sum())
                else:
                    total += param.numel()
        return total
