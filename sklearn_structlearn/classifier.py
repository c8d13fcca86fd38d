"""A classifier whose network structure is learned without labels, then trained with them.

:class:`StructuredNetClassifier` chains the two halves of the method:

1. a :class:`~sklearn_structlearn.DeepStructureLearner` learns the structure of the
   network -- connectivity masks, pooling groups, depth -- and its initial weights from
   ``X`` alone (no labels);
2. the structure is exported as a PyTorch network in ``"feedforward"`` mode (masked
   linear layers, learnable group thresholds, group pooling) with a linear head, and the
   whole network is trained with the labels (Adam on mini-batches, early stopping on a
   validation split).

torch is an optional dependency: it is imported inside ``fit`` / ``predict`` only, so
this module imports without it.
"""

import copy
import os
import time
from contextlib import contextmanager

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validation import check_float, check_int, check_numeric_dtype
from .deep import DeepStructureLearner

__all__ = ["StructuredNetClassifier"]

_TORCH_HINT = (
    "StructuredNetClassifier trains a PyTorch network; torch is an optional dependency of "
    "sklearn-structlearn. Install it with `pip install sklearn-structlearn[torch]` "
    "(or `pip install torch`)."
)
# Parameters of the classifier forwarded verbatim to the DeepStructureLearner; they may
# not be repeated in ``structure_params`` (two sources for one value would be ambiguous).
_FORWARDED = (
    "max_depth",
    "n_components",
    "group_size",
    "alpha",
    "connectivity_alpha",
    "preprocessing",
    "image_shape",
)
# Derived by the classifier (seed, threads, verbosity) -- also not allowed in structure_params.
_DERIVED = ("random_state", "n_jobs", "verbose")
# Rows per forward pass at prediction time: bounds memory, not a tuning knob.
_PREDICT_BATCH = 4096


def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(_TORCH_HINT) from exc
    return torch


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


def _batched_logits(torch, module, X, batch_size=_PREDICT_BATCH):
    """Logits of ``module`` on the tensor ``X`` (eval mode, no gradient), in batches."""
    module.eval()
    with torch.no_grad():
        return torch.cat([module(X[i:i + batch_size]) for i in range(0, X.shape[0], batch_size)])


def _train_torch_module(
    module,
    X_train,
    y_train,
    X_val=None,
    y_val=None,
    *,
    max_epochs=30,
    batch_size=128,
    learning_rate=1e-3,
    weight_decay=0.0,
    n_iter_no_change=5,
    tol=1e-4,
    param_groups=None,
    generator=None,
    verbose=0,
    name="net",
):
    """Train a classification ``module`` with Adam and cross-entropy; early stopping.

    Shared by :class:`StructuredNetClassifier` and the benchmarks, so that every network
    compared there gets exactly the same optimiser, batches and stopping rule.

    With a validation set the state of the epoch with the best validation accuracy (ties:
    the lower validation loss) is restored at the end, and training stops after
    ``n_iter_no_change`` epochs without a new best. Without one, training stops when the
    training loss has not decreased by more than ``tol`` for ``n_iter_no_change`` epochs,
    and the last state is kept.

    Parameters
    ----------
    module : torch.nn.Module
        Maps a float tensor (batch, ...) to logits (batch, n_classes); trained in place.
    X_train, y_train : Tensor
        Inputs (float) and class indices (int64).
    X_val, y_val : Tensor or None
        Validation data for early stopping and model selection.
    param_groups : list of dict or None
        Adam parameter groups (e.g. a smaller step for some parameters); ``None``
        trains ``module.parameters()`` with ``learning_rate`` and ``weight_decay``.
    generator : torch.Generator or None
        Source of the mini-batch shuffling.

    Returns
    -------
    history : dict of lists
        Per epoch: ``"train_loss"``, ``"val_loss"``, ``"val_accuracy"`` (NaN without a
        validation set) and ``"time"`` (wall seconds).
    best_epoch : int
        1-based epoch whose state the module holds on return.
    """
    import torch
    from torch.nn import functional as F

    params = module.parameters() if param_groups is None else param_groups
    optimizer = torch.optim.Adam(params, lr=learning_rate, weight_decay=weight_decay)
    has_val = X_val is not None and X_val.shape[0] > 0
    history = {"train_loss": [], "val_loss": [], "val_accuracy": [], "time": []}
    n = X_train.shape[0]
    best_key, best_state, best_epoch = None, None, 0
    best_train_loss = np.inf
    no_change = 0
    for epoch in range(1, max_epochs + 1):
        t0 = time.perf_counter()
        module.train()
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(module(X_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * idx.shape[0]
        train_loss = total / n
        if not np.isfinite(train_loss):
            raise FloatingPointError(
                f"{name}: the training loss became {train_loss} at epoch {epoch}; lower "
                "learning_rate."
            )
        val_loss = val_acc = float("nan")
        if has_val:
            logits = _batched_logits(torch, module, X_val)
            val_loss = float(F.cross_entropy(logits, y_val))
            val_acc = float((logits.argmax(dim=1) == y_val).double().mean())
        history["train_loss"].append(train_loss)
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(val_acc)
        history["time"].append(time.perf_counter() - t0)

        if has_val:
            key = (val_acc, -val_loss)
            improved = best_key is None or key > best_key
            if improved:
                best_key, best_epoch = key, epoch
                # A copy, not a reference: the optimiser updates parameters in place.
                best_state = copy.deepcopy(module.state_dict())
        else:
            improved = train_loss < best_train_loss - tol
            best_train_loss = min(best_train_loss, train_loss)
            best_epoch = epoch
        no_change = 0 if improved else no_change + 1
        if verbose:
            val = f", val loss {val_loss:.4f}, val accuracy {val_acc:.4f}" if has_val else ""
            print(
                f"[{name}] epoch {epoch}: train loss {train_loss:.4f}{val}"
                f"{' *' if improved and has_val else ''} [{history['time'][-1]:.1f}s]",
                flush=True,
            )
        if no_change >= n_iter_no_change:
            if verbose:
                print(f"[{name}] no improvement for {n_iter_no_change} epochs: stopping",
                      flush=True)
            break
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return history, best_epoch


class StructuredNetClassifier(ClassifierMixin, BaseEstimator):
    """Neural network classifier whose structure is learned from the unlabeled data.

    ``fit`` runs in two stages:

    1. **Structure, without labels.** A
       :class:`~sklearn_structlearn.DeepStructureLearner` is fitted on the training
       inputs: it learns the connectivity of every layer (which unit reads which
       input), the pooling groups and the depth, by stacked group sparse coding.
    2. **Weights, with labels.** The learned network is exported to PyTorch in
       ``"feedforward"`` mode -- fixed preprocessing, masked linear layers initialised
       with the dictionaries, a learnable threshold per group, group pooling -- with a
       linear classification head (optionally preceded by batch normalisation and
       dropout of the pooled outputs), and trained end to end with cross-entropy
       (Adam, shuffled mini-batches). The connectivity masks are applied in the
       forward pass, so pruned connections stay exactly zero. A stratified
       ``validation_fraction`` of the training data is held out; the epoch with the
       best validation accuracy is kept and training stops after
       ``n_iter_no_change`` epochs without improvement.

    Needs the optional dependency torch (``pip install sklearn-structlearn[torch]``).

    Parameters
    ----------
    max_depth : int, default=3
        Maximum number of structured layers (the learned depth may be smaller).
    n_components : int, None or list, default=128
        Units per layer.
    group_size : int or list, default=4
        Units per pooling group.
    alpha : float, "auto" or list, default="auto"
        Code penalty of each layer.
    connectivity_alpha : float, "auto" or list, default="auto"
        Connectivity penalty of each layer (``0``: dense layers).
    preprocessing : {"standardize", "zca"} or None, default="zca"
        Fixed affine preprocessing, the first (untrained) stage of the network.
    image_shape : tuple of int, default=None
        Shape of the input images; only used to describe the learned structure
        (``structure_learner_.structure_``).
    structure_params : dict, default=None
        Further :class:`~sklearn_structlearn.DeepStructureLearner` parameters
        (``depth_tol``, ``pooling``, ``max_iter``, ``zca_epsilon``...). The parameters
        above and ``random_state``, ``n_jobs``, ``verbose`` are set by the classifier
        and may not appear here.
    max_structure_samples : int, default=None
        Learn the structure on at most this many training rows (a random subset);
        ``None`` uses all of them. The supervised training always uses every row.
    max_epochs : int, default=30
        Maximum passes over the training data.
    batch_size : int, default=128
        Mini-batch size.
    learning_rate : float, default=1e-3
        Adam step size.
    weight_decay : float, default=0.0
        L2 penalty of Adam (pruned weights are zero and stay zero).
    encoder_learning_rate : float, default=None
        Adam step size of the structured layers (masked weights, biases, thresholds);
        ``None`` uses ``learning_rate``. A smaller value keeps the encoder closer to
        the unsupervised dictionaries while the head learns.
    batch_norm : bool, default=False
        Standardise the pooled outputs of the last structured layer
        (``BatchNorm1d``) before the linear head. Off by default: on Fashion-MNIST
        (10,000 images, one learned layer) it lowered test accuracy by 0.6 points
        (more overfitting), and it made no measurable difference on the digits.
    dropout : float, default=0.0
        Dropout probability on the pooled outputs, before the linear head.
    validation_fraction : float, default=0.1
        Fraction of the training data held out (stratified) for early stopping and
        selection of the best epoch. ``0`` disables it: training stops when the training
        loss stalls and the last epoch is kept.
    n_iter_no_change : int, default=5
        Epochs without improvement before stopping.
    tol : float, default=1e-4
        Minimum decrease of the training loss counted as an improvement (used only
        without a validation split).
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the structure learner, the head's initialisation
        and the mini-batch order. Pass an int for reproducible fits (with the same
        number of threads).
    verbose : int, default=0
        ``1`` prints one line per epoch and per learned layer; ``2`` also the
        layers' own progress.
    n_jobs : int, default=None
        Threads of the structure learner and of torch during ``fit`` and ``predict``
        (torch's previous setting is restored afterwards). ``None`` leaves torch's
        setting and lets the structure learner use all cores; ``-1`` means all cores.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    structure_learner_ : DeepStructureLearner
        The fitted structure learner (learned depth, masks, groups, entropies).
    module_ : torch.nn.Module
        The trained network (a ``StructuredNet``), in eval mode; it outputs logits.
    history_ : dict of lists
        Per epoch: ``"train_loss"``, ``"val_loss"``, ``"val_accuracy"`` and ``"time"``.
    n_epochs_ : int
        Epochs run.
    best_epoch_ : int
        Epoch whose weights ``module_`` holds (best validation accuracy).
    fit_times_ : dict
        Seconds spent in the two stages of ``fit``: ``"structure_wall"``,
        ``"structure_cpu"``, ``"training_wall"``, ``"training_cpu"`` (CPU time of this
        process, all threads).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    DeepStructureLearner : the unsupervised first stage.
    sklearn.neural_network.MLPClassifier : a fully connected network.

    Examples
    --------
    >>> from sklearn.model_selection import train_test_split
    >>> from sklearn_structlearn.classifier import StructuredNetClassifier
    >>> from sklearn_structlearn.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    >>> clf = StructuredNetClassifier(
    ...     max_depth=1, n_components=64, connectivity_alpha=0.005,
    ...     structure_params={"max_iter": 5}, learning_rate=1e-2, batch_size=64,
    ...     max_epochs=20, random_state=0, n_jobs=1,
    ... ).fit(X_train, y_train)
    >>> clf.predict_proba(X_test[:2]).shape
    (2, 10)
    >>> clf.score(X_test, y_test) > 0.8
    True
    """

    def __init__(
        self,
        max_depth=3,
        *,
        n_components=128,
        group_size=4,
        alpha="auto",
        connectivity_alpha="auto",
        preprocessing="zca",
        image_shape=None,
        structure_params=None,
        max_structure_samples=None,
        max_epochs=30,
        batch_size=128,
        learning_rate=1e-3,
        weight_decay=0.0,
        validation_fraction=0.1,
        n_iter_no_change=5,
        tol=1e-4,
        encoder_learning_rate=None,
        batch_norm=False,
        dropout=0.0,
        random_state=None,
        verbose=0,
        n_jobs=None,
    ):
        self.max_depth = max_depth
        self.n_components = n_components
        self.group_size = group_size
        self.alpha = alpha
        self.connectivity_alpha = connectivity_alpha
        self.preprocessing = preprocessing
        self.image_shape = image_shape
        self.structure_params = structure_params
        self.max_structure_samples = max_structure_samples
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.encoder_learning_rate = encoder_learning_rate
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.random_state = random_state
        self.verbose = verbose
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ helpers
    def _check_params(self):
        check_int(self.max_epochs, "max_epochs", min_value=1)
        check_int(self.batch_size, "batch_size", min_value=1)
        check_float(self.learning_rate, "learning_rate", min_value=0.0, strict=True)
        check_float(self.weight_decay, "weight_decay", min_value=0.0)
        fraction = check_float(self.validation_fraction, "validation_fraction", min_value=0.0)
        if fraction >= 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {fraction}.")
        check_int(self.n_iter_no_change, "n_iter_no_change", min_value=1)
        check_float(self.tol, "tol", min_value=0.0)
        check_float(self.encoder_learning_rate, "encoder_learning_rate", min_value=0.0,
                    strict=True, allow_none=True)
        if not isinstance(self.batch_norm, (bool, np.bool_)):
            raise TypeError(f"batch_norm must be a bool, got {self.batch_norm!r}.")
        dropout = check_float(self.dropout, "dropout", min_value=0.0)
        if dropout >= 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        check_int(self.verbose, "verbose", min_value=0)
        check_int(self.max_structure_samples, "max_structure_samples", min_value=2,
                  allow_none=True)
        if self.n_jobs is not None:
            n_jobs = check_int(self.n_jobs, "n_jobs")
            if n_jobs == 0:
                raise ValueError("n_jobs == 0 has no meaning; use None, a positive int or -1.")
        params = self.structure_params
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise TypeError(
                f"structure_params must be a dict or None, got {type(params).__name__}."
            )
        clashes = sorted(set(params) & set(_FORWARDED + _DERIVED))
        if clashes:
            raise ValueError(
                f"structure_params may not set {clashes}: they are parameters of "
                f"{type(self).__name__} itself (set them there)."
            )
        valid = DeepStructureLearner().get_params()
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ValueError(
                f"structure_params has unknown DeepStructureLearner parameters {unknown}; "
                f"valid ones are {sorted(set(valid) - set(_FORWARDED + _DERIVED))}."
            )
        return fraction, dict(params)

    def _make_structure_learner(self, params, seed):
        forwarded = {name: getattr(self, name) for name in _FORWARDED}
        learner = DeepStructureLearner(
            **forwarded, **params, random_state=seed, n_jobs=self.n_jobs,
            verbose=self.verbose,
        )
        return clone(learner)

    def _log(self, message):
        if self.verbose:
            print(f"[{type(self).__name__}] {message}", flush=True)

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y):
        """Learn the structure from ``X``, then train the network with ``y``.

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
        fraction, structure_params = self._check_params()
        check_numeric_dtype(X, "X")
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64], ensure_min_samples=2)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in y; got only "
                f"class {self.classes_[0]!r}."
            )
        y_enc = encoder.transform(y)
        torch = _import_torch()

        split_seed, structure_seed, subset_seed, torch_seed = self._seeds(self.random_state)
        if fraction > 0:
            X_train, X_val, y_train, y_val = self._split(X, y_enc, fraction, split_seed)
        else:
            X_train, y_train, X_val, y_val = X, y_enc, None, None

        X_struct = X_train
        if (self.max_structure_samples is not None
                and X_train.shape[0] > self.max_structure_samples):
            rows = np.random.RandomState(subset_seed).choice(
                X_train.shape[0], size=self.max_structure_samples, replace=False)
            X_struct = X_train[np.sort(rows)]

        t0, c0 = time.perf_counter(), time.process_time()
        self._log(f"learning the structure on {X_struct.shape[0]} samples (no labels)")
        learner = self._make_structure_learner(structure_params, int(structure_seed))
        learner.fit(X_struct)
        self.structure_learner_ = learner
        times = {"structure_wall": time.perf_counter() - t0,
                 "structure_cpu": time.process_time() - c0}
        self._log(
            f"structure: {learner.n_layers_} layer(s) "
            f"[{times['structure_wall']:.1f}s]; training with labels"
        )

        t0, c0 = time.perf_counter(), time.process_time()
        with _torch_threads(torch, self.n_jobs):
            # fork_rng: seeding the head's initialisation must not reset the caller's
            # global torch random state.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(torch_seed))
                module = self._export(learner, n_classes, torch)
                self._add_head_regularisers(module, n_classes, torch)
            generator = torch.Generator().manual_seed(int(torch_seed) + 1)

            def as_tensors(X_part, y_part):
                if X_part is None:
                    return None, None
                return (torch.as_tensor(np.asarray(X_part, dtype=np.float32)),
                        torch.as_tensor(np.asarray(y_part, dtype=np.int64)))

            history, best_epoch = _train_torch_module(
                module,
                *as_tensors(X_train, y_train),
                *as_tensors(X_val, y_val),
                max_epochs=self.max_epochs,
                batch_size=self.batch_size,
                learning_rate=self.learning_rate,
                weight_decay=self.weight_decay,
                n_iter_no_change=self.n_iter_no_change,
                tol=self.tol,
                param_groups=self._param_groups(module),
                generator=generator,
                verbose=self.verbose,
                name=type(self).__name__,
            )
        self.module_ = module
        self.history_ = history
        self.n_epochs_ = len(history["train_loss"])
        self.best_epoch_ = best_epoch
        times["training_wall"] = time.perf_counter() - t0
        times["training_cpu"] = time.process_time() - c0
        self.fit_times_ = times
        return self

    @staticmethod
    def _seeds(random_state):
        """Seeds of the validation split, structure learner, structure subset and torch."""
        rng = check_random_state(random_state)
        return [int(seed) for seed in rng.randint(np.iinfo(np.int32).max, size=4)]

    @staticmethod
    def _split(X, y, fraction, seed):
        """Stratified train/validation split (plain when a class is too small for it)."""
        n_val = int(np.ceil(fraction * X.shape[0]))
        n_classes = len(np.unique(y))
        counts = np.bincount(y)
        stratify = y if (counts.min() >= 2 and n_classes <= n_val
                         and n_classes <= X.shape[0] - n_val) else None
        if X.shape[0] - n_val < 2:
            # the structure learner needs 2 samples: say so here, not deep inside it
            raise ValueError(
                f"validation_fraction={fraction} leaves {X.shape[0] - n_val} training "
                f"samples out of {X.shape[0]}; at least 2 are needed."
            )
        return train_test_split(X, y, test_size=n_val, random_state=seed, stratify=stratify)

    def _add_head_regularisers(self, module, n_classes, torch):
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

    def _param_groups(self, module):
        """Adam groups: the structured layers may get their own step size."""
        if self.encoder_learning_rate is None:
            return None
        encoder = [p for layer in module.layers for p in layer.parameters()]
        ids = {id(p) for p in encoder}
        rest = [p for p in module.parameters() if id(p) not in ids]
        return [{"params": encoder, "lr": float(self.encoder_learning_rate)},
                {"params": rest}]

    @staticmethod
    def _export(learner, n_classes, torch):
        to_torch = getattr(learner, "to_torch", None)
        if to_torch is not None:
            return to_torch(mode="feedforward", n_classes=n_classes, dtype=torch.float32)
        from .export import estimator_to_torch

        return estimator_to_torch(learner, mode="feedforward", n_classes=n_classes,
                                  dtype=torch.float32)

    # ------------------------------------------------------------------ predicting
    def _logits(self, X):
        check_is_fitted(self)
        check_numeric_dtype(X, "X")
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        torch = _import_torch()
        with _torch_threads(torch, self.n_jobs):
            logits = _batched_logits(torch, self.module_,
                                     torch.as_tensor(np.asarray(X, dtype=np.float32)))
        return logits

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
        logits = self._logits(X)
        # softmax in float64 so that rows sum to 1 to double precision
        return logits.double().softmax(dim=1).numpy()

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
        return self._logits(X).double().log_softmax(dim=1).numpy()

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
    def n_parameters(self, nonzero=False):
        """Number of trainable parameters of ``module_``.

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
        for module in self.module_.modules():
            mask = getattr(module, "mask", None)
            for name, param in module.named_parameters(recurse=False):
                if nonzero and name == "weight" and mask is not None and mask.shape == param.shape:
                    total += int(mask.sum())
                else:
                    total += param.numel()
        return total
