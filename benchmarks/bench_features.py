"""Learned representations against classic unsupervised features, one protocol for all.

Does ``DeepStructureLearner`` learn a *good representation*? Every representation below
is learned without labels, then the same supervised read-out is trained on its outputs:

- **breast_cancer, wine**: 5-fold stratified cross-validation (shuffled, seed 0). In every
  fold a ``StandardScaler`` is fitted on the training part first and every
  representation is learned on the standardised training part.
- **digits**: one stratified 70/30 split (seed 0); pixels divided by 16 (in [0, 1]); the
  representation is learned on the 70% part.
- **Fashion-MNIST**: the representation is learned on 20,000 training images (random,
  seed 0, no labels); the classifier is trained on the representation of all 60,000
  training images and evaluated on the official 10,000 test images; pixels in [0, 1].

The read-out, identical for every representation: ``StandardScaler`` then
``LogisticRegression`` (lbfgs, multinomial), with ``C`` chosen on the training data only:
by 3-fold stratified inner cross-validation over ``C in {1e-3, 1e-2, 1e-1, 1, 10}`` on the
small sets; on Fashion-MNIST by a hold-out inside the 60k training set (fit on 20,000
images, score on 10,000 others, ``C in {1e-2, 1e-1, 1}``), then refitted on the 60,000.

Representations (settings chosen to be reasonable and cheap enough to run here; see
``REPRESENTATIONS`` and the report's header):

- ``raw``: the input features themselves.
- ``pca``: ``PCA`` keeping 95% of the variance.
- ``rbm``: ``MinMaxScaler`` then ``BernoulliRBM(256 hidden units, learning_rate=0.05,
  batch_size=100, n_iter=20)``; hidden-unit probabilities.
- ``mbdl-256`` / ``mbdl-1024``: ``MiniBatchDictionaryLearning`` (atoms 256 / 1024, the
  wide one on images only; ``alpha=1``, batch 256, 20 epochs at most) on centred inputs;
  lasso codes (``transform_algorithm="lasso_cd"``, ``transform_alpha=alpha``).
- ``kmeans-tri``: centred and ZCA-whitened inputs (regulariser 0.1 x the mean
  eigenvalue), ``KMeans(K = min(1024, n_fit // 4))``, "triangle" activations
  ``max(0, mean_k d_k - d_k)`` (Coates, Lee & Ng 2011).
- ``patches`` (images only): the hand-designed local-patch pipeline of Coates, Lee & Ng
  (2011): every ``p x p`` patch (stride 1) normalised (mean removed, divided by
  ``sqrt(var + 10 / 255^2)``), ZCA-whitened (``+0.1`` on the eigenvalues), ``KMeans``
  with ``K`` centroids on 100,000 random patches, triangle encoding at every position,
  sum-pooling over the four quadrants (``4K`` features). Fashion: ``p = 6``, ``K = 400``;
  digits: ``p = 4``, ``K = 128``.
- ``learner``: ``DeepStructureLearner()`` with its defaults (``random_state=0``,
  ``n_jobs=--threads``).
- ``learner+input``: the same fitted learner, its outputs handed on beside its
  preprocessed input (what ``transform`` could hand on instead of the top layer).
- ``learner-lasso``: ``DeepStructureLearner(transform_algorithm="lasso")``, its own fit
  (the same dictionary as ``learner``'s at depth 1), the rows coded by the objective's
  codes instead of the default feed-forward ``prox(x D^T)`` (the default until
  2026-12-02; this row was ``learner-threshold``, the feed-forward one, until then).

Reported per representation: accuracy (mean and std over the folds for the CV sets),
output width, wall and CPU time (``time.process_time``: all threads of this process) of
learning the representation, wall time of computing it for the classifier's data, the
chosen ``C``. Threads (BLAS, OpenMP, Numba) are pinned to ``--threads`` for everything.

Run::

    python benchmarks/bench_features.py --quick                      # minutes: subsamples
    python benchmarks/bench_features.py --json bench_features.json   # the full run
    python benchmarks/bench_features.py --datasets digits --reps raw learner

Markdown report on stdout, progress on stderr, every figure (per fold) in ``--json``.
Needs the Debian package ``dataset-fashion-mnist`` for Fashion-MNIST (or ``--data PATH``;
the data set is skipped with a note when the files are absent).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from datetime import datetime, timezone

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.decomposition import PCA, MiniBatchDictionaryLearning
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.neural_network import BernoulliRBM
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import (  # noqa: E402
    dump_json_new,
    fmt_seconds,
    format_table,
    pinned_threads,
    refuse_existing,
)

SMALL_CS = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
FASHION_CS = (1e-2, 1e-1, 1.0)


def _log(message):
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- peers
def _zca(X, eps_rel):
    """Mean and ZCA matrix of ``X`` with ``eps_rel`` x the mean eigenvalue added."""
    mean = X.mean(axis=0)
    centred = X - mean
    w, V = np.linalg.eigh(centred.T @ centred / len(X))
    w = np.maximum(w, 0.0)
    return mean, (V / np.sqrt(w + eps_rel * w.mean())) @ V.T


def _triangle(sq_dist):
    """Triangle activations ``max(0, mean_k d_k - d_k)`` from squared distances (rows)."""
    d = np.sqrt(np.maximum(sq_dist, 0.0))
    return np.maximum(d.mean(axis=-1, keepdims=True) - d, 0.0)


def _sq_distances(P, centres, centre_sqnorms):
    return (np.einsum("ij,ij->i", P, P)[:, None] - 2.0 * (P @ centres.T)
            + centre_sqnorms[None, :])


class TriangleKMeans(TransformerMixin, BaseEstimator):
    """ZCA-whitened k-means with triangle activations (Coates, Lee & Ng 2011)."""

    def __init__(self, n_clusters=1024, zca_epsilon=0.1, random_state=0):
        self.n_clusters = n_clusters
        self.zca_epsilon = zca_epsilon
        self.random_state = random_state

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=np.float64)
        self.mean_, self.whiten_ = _zca(X, self.zca_epsilon)
        W = (X - self.mean_) @ self.whiten_
        k = min(self.n_clusters, max(2, len(X) // 4))
        self.kmeans_ = KMeans(k, n_init=1, max_iter=100, random_state=self.random_state).fit(W)
        self.centres_ = self.kmeans_.cluster_centers_
        return self

    def transform(self, X):
        W = (np.asarray(X, dtype=np.float64) - self.mean_) @ self.whiten_
        c2 = np.einsum("ij,ij->i", self.centres_, self.centres_)
        return _triangle(_sq_distances(W, self.centres_, c2))


class PatchPipeline(TransformerMixin, BaseEstimator):
    """Coates, Lee & Ng (2011): normalised, whitened patches, k-means, triangle, quadrants.

    Every ``patch_size`` square patch (stride 1) of every image is normalised (mean
    removed, divided by ``sqrt(var + norm_eps)``), ZCA-whitened (``zca_epsilon`` added to
    the eigenvalues), encoded by triangle k-means against ``n_centroids`` centroids
    learned on ``n_patches`` random patches, and the codes are summed over the four
    quadrants of the grid of positions: ``4 * n_centroids`` features.
    """

    def __init__(self, image_shape=(28, 28), patch_size=6, n_centroids=400,
                 n_patches=100_000, norm_eps=10.0 / 255**2, zca_epsilon=0.1,
                 batch_images=200, random_state=0):
        self.image_shape = image_shape
        self.patch_size = patch_size
        self.n_centroids = n_centroids
        self.n_patches = n_patches
        self.norm_eps = norm_eps
        self.zca_epsilon = zca_epsilon
        self.batch_images = batch_images
        self.random_state = random_state

    def _patches(self, X):
        """(n_images, n_pos_h, n_pos_w, p*p) normalised patches, float32."""
        h, w = self.image_shape
        p = self.patch_size
        images = np.asarray(X, dtype=np.float32).reshape(-1, h, w)
        windows = np.lib.stride_tricks.sliding_window_view(images, (p, p), axis=(1, 2))
        P = windows.reshape(images.shape[0], h - p + 1, w - p + 1, p * p)
        P = P - P.mean(axis=-1, keepdims=True)
        return P / np.sqrt((P**2).mean(axis=-1, keepdims=True) + self.norm_eps)

    def fit(self, X, y=None):
        rng = np.random.RandomState(self.random_state)
        P = self._patches(X)
        flat = P.reshape(-1, P.shape[-1])
        rows = rng.choice(len(flat), size=min(self.n_patches, len(flat)), replace=False)
        sample = flat[rows].astype(np.float64)
        self.mean_ = sample.mean(axis=0)
        c = sample - self.mean_
        w, V = np.linalg.eigh(c.T @ c / len(c))
        self.whiten_ = (V / np.sqrt(np.maximum(w, 0.0) + self.zca_epsilon)) @ V.T
        W = c @ self.whiten_
        self.kmeans_ = KMeans(self.n_centroids, n_init=1, max_iter=100,
                              random_state=self.random_state).fit(W)
        return self

    def transform(self, X):
        X = np.asarray(X)
        centres = self.kmeans_.cluster_centers_.astype(np.float32)
        c2 = np.einsum("ij,ij->i", centres, centres)
        mean = self.mean_.astype(np.float32)
        whiten = self.whiten_.astype(np.float32)
        out = []
        for lo in range(0, len(X), self.batch_images):
            P = self._patches(X[lo:lo + self.batch_images])
            n, gh, gw, d = P.shape
            W = (P.reshape(-1, d) - mean) @ whiten
            F = _triangle(_sq_distances(W, centres, c2)).reshape(n, gh, gw, -1)
            mh, mw = (gh + 1) // 2, (gw + 1) // 2
            quads = [F[:, :mh, :mw], F[:, :mh, mw:], F[:, mh:, :mw], F[:, mh:, mw:]]
            out.append(np.concatenate([q.sum(axis=(1, 2)) for q in quads], axis=1))
        return np.concatenate(out).astype(np.float64)


def _identity():
    return FunctionTransformer()


class LearnerAndInput(TransformerMixin, BaseEstimator):
    """A fitted ``DeepStructureLearner`` whose outputs are handed on beside its
    preprocessed input (the alternative to handing on the top layer only that the
    benchmark measures; reuses the ``learner`` row's fit)."""

    def __init__(self, learner):
        self.learner = learner

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        Z = self.learner.transform(X)
        return np.hstack([self.learner._preprocess(np.asarray(X, dtype=Z.dtype)), Z])


def make_representation(name, info, threads):
    """A fresh, unfitted transformer for representation ``name`` on data set ``info``."""
    images = info.get("image_shape") is not None
    if name == "raw":
        return _identity()
    if name == "pca":
        return PCA(n_components=0.95, svd_solver="full", random_state=0)
    if name == "rbm":
        return make_pipeline(MinMaxScaler(), BernoulliRBM(
            n_components=256, learning_rate=0.05, batch_size=100, n_iter=20, random_state=0))
    if name.startswith("mbdl-"):
        k = int(name.split("-")[1])
        return make_pipeline(StandardScaler(with_std=False), MiniBatchDictionaryLearning(
            n_components=k, alpha=1.0, batch_size=256, max_iter=20,
            transform_algorithm="lasso_cd", transform_alpha=1.0, random_state=0,
            n_jobs=threads))
    if name == "kmeans-tri":
        return TriangleKMeans(n_clusters=1024, random_state=0)
    if name == "patches":
        if not images:
            return None
        if info["image_shape"] == (8, 8):
            return PatchPipeline((8, 8), patch_size=4, n_centroids=128, random_state=0)
        return PatchPipeline(info["image_shape"], patch_size=6, n_centroids=400,
                             random_state=0)
    if name == "learner":
        from sklearn_structlearn import DeepStructureLearner

        return DeepStructureLearner(random_state=0, n_jobs=threads)
    if name == "learner-lasso":
        from sklearn_structlearn import DeepStructureLearner

        return DeepStructureLearner(transform_algorithm="lasso", random_state=0,
                                    n_jobs=threads)
    raise ValueError(f"unknown representation {name!r}")


# "learner+input" reuses the "learner" fit of the same data (same learner, the transform
# also hands on the preprocessed input): (data set, fold) -> (learner, wall, CPU)
_LEARNER_FITS = {}


def _fit_representation(rep, info, X, args, key):
    """A fitted representation and its fit wall / CPU time (the learner's fit reused)."""
    if rep == "learner+input":
        if key not in _LEARNER_FITS:
            _fit_representation("learner", info, X, args, key)
        fitted, wall, cpu = _LEARNER_FITS[key]
        return LearnerAndInput(fitted), wall, cpu
    model = make_representation(rep, info, args.threads)
    if model is None:
        return None, None, None
    _, wall, cpu = _timed(lambda: model.fit(X))
    if rep == "learner":
        _LEARNER_FITS[key] = (model, wall, cpu)
    return model, wall, cpu


REPRESENTATIONS = ("raw", "pca", "rbm", "mbdl-256", "mbdl-1024", "kmeans-tri", "patches",
                   "learner", "learner+input", "learner-lasso")
# wide dictionary learning only where there are many inputs to explain
IMAGE_ONLY = {"mbdl-1024", "patches"}


# ---------------------------------------------------------------------------- read-out
def _readout():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


def fit_readout_small(Z_train, y_train):
    """LR with C by 3-fold stratified inner CV on the training data."""
    search = GridSearchCV(_readout(), {"logisticregression__C": list(SMALL_CS)},
                          cv=StratifiedKFold(3, shuffle=True, random_state=0), n_jobs=1)
    search.fit(Z_train, y_train)
    return search.best_estimator_, float(search.best_params_["logisticregression__C"])


def fit_readout_holdout(Z_train, y_train, n_fit, n_val, cs=FASHION_CS, max_iter=500):
    """LR with C chosen on a hold-out inside the training set, then refitted on all of it."""
    rng = np.random.RandomState(0)
    order = rng.permutation(len(Z_train))
    fit_rows, val_rows = order[:n_fit], order[n_fit:n_fit + n_val]
    scores = {}
    for C in cs:
        clf = _readout().set_params(logisticregression__C=C,
                                    logisticregression__max_iter=max_iter)
        clf.fit(Z_train[fit_rows], y_train[fit_rows])
        scores[C] = float(clf.score(Z_train[val_rows], y_train[val_rows]))
        _log(f"      C={C:g}: hold-out accuracy {scores[C]:.4f}")
    best = max(cs, key=lambda c: (scores[c], -c))  # ties: the stronger regularisation
    clf = _readout().set_params(logisticregression__C=best,
                                logisticregression__max_iter=max_iter)
    clf.fit(Z_train, y_train)
    return clf, float(best), scores


# ---------------------------------------------------------------------------- data
def _timed(func):
    w0, c0 = time.perf_counter(), time.process_time()
    out = func()
    return out, time.perf_counter() - w0, time.process_time() - c0


def load_datasets(names, args):
    """Each data set as a dict: X, y, splits and the protocol's description."""
    out = {}
    for name in names:
        if name in ("breast_cancer", "wine"):
            X, y = (load_breast_cancer if name == "breast_cancer" else load_wine)(
                return_X_y=True)
            folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
            out[name] = dict(X=X.astype(np.float64), y=y, folds=folds, image_shape=None,
                             n_features=X.shape[1], standardize=True,
                             protocol="5-fold stratified CV, StandardScaler first")
        elif name == "digits":
            X, y = load_digits(return_X_y=True)
            tr, te = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y,
                                      random_state=0)
            out[name] = dict(X=X / 16.0, y=y, folds=[(tr, te)], image_shape=(8, 8),
                             n_features=64, standardize=False,
                             protocol="stratified 70/30 split, pixels / 16")
        elif name == "fashion":
            from sklearn_structlearn.datasets import fashion_mnist_available, load_fashion_mnist

            if not fashion_mnist_available(args.data):
                _log("Fashion-MNIST files not found (Debian package dataset-fashion-mnist): "
                     "skipped")
                continue
            Xtr, ytr = load_fashion_mnist(args.data, subset="train", dtype=np.float32)
            Xte, yte = load_fashion_mnist(args.data, subset="test", dtype=np.float32)
            rng = np.random.RandomState(0)
            n_struct, n_train, n_test = args.fashion_sizes
            train = np.sort(rng.permutation(len(ytr))[:n_train])
            struct = np.sort(rng.permutation(len(ytr))[:n_struct])
            test = np.sort(np.random.RandomState(1).permutation(len(yte))[:n_test])
            out[name] = dict(
                X_struct=Xtr[struct], X_train=Xtr[train], y_train=ytr[train],
                X_test=Xte[test], y_test=yte[test], image_shape=(28, 28), n_features=784,
                protocol=(f"representation learned on {n_struct} training images (no labels); "
                          f"LR on {n_train} training images; {n_test} official test images"))
    return out


# ---------------------------------------------------------------------------- runs
def run_small(name, info, rep, args):
    """One representation on a CV / split data set: per-fold accuracy and times."""
    folds = []
    for k, (tr, te) in enumerate(info["folds"]):
        X_tr, X_te = info["X"][tr], info["X"][te]
        if info["standardize"]:
            scaler = StandardScaler().fit(X_tr)
            X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
        model, fit_wall, fit_cpu = _fit_representation(rep, info, X_tr, args, (name, k))
        if model is None:
            return None
        (Z_tr, Z_te), tf_wall, _ = _timed(lambda: (model.transform(X_tr), model.transform(X_te)))
        clf, C = fit_readout_small(Z_tr, info["y"][tr])
        acc = float(clf.score(Z_te, info["y"][te]))
        folds.append(dict(fold=k, accuracy=acc, C=C, width=int(Z_tr.shape[1]),
                          fit_wall=fit_wall, fit_cpu=fit_cpu, transform_wall=tf_wall,
                          extra=_extra(model, X_tr)))
        _log(f"    fold {k}: accuracy {acc:.4f} width {Z_tr.shape[1]} C={C:g} fit "
             f"{fit_wall:.1f}s")
    accs = [f["accuracy"] for f in folds]
    return dict(accuracy=float(np.mean(accs)),
                accuracy_std=float(np.std(accs)) if len(accs) > 1 else None,
                width=folds[0]["width"], C=[f["C"] for f in folds],
                fit_wall=float(np.mean([f["fit_wall"] for f in folds])),
                fit_cpu=float(np.mean([f["fit_cpu"] for f in folds])),
                transform_wall=float(np.mean([f["transform_wall"] for f in folds])),
                folds=folds)


def run_fashion(info, rep, args):
    model, fit_wall, fit_cpu = _fit_representation(rep, info, info["X_struct"], args,
                                                   ("fashion", 0))
    if model is None:
        return None
    _log(f"    fitted in {fit_wall:.1f}s (CPU {fit_cpu:.1f}s)")
    (Z_tr, Z_te), tf_wall, _ = _timed(
        lambda: (model.transform(info["X_train"]), model.transform(info["X_test"])))
    _log(f"    transformed {len(Z_tr) + len(Z_te)} images in {tf_wall:.1f}s, width "
         f"{Z_tr.shape[1]}")
    n_fit, n_val = args.holdout_sizes
    (clf, C, scores), lr_wall, _ = _timed(
        lambda: fit_readout_holdout(Z_tr, info["y_train"], n_fit, n_val))
    acc = float(clf.score(Z_te, info["y_test"]))
    return dict(accuracy=acc, accuracy_std=None, width=int(Z_tr.shape[1]), C=C,
                holdout_scores=scores, fit_wall=fit_wall, fit_cpu=fit_cpu,
                transform_wall=tf_wall, readout_wall=lr_wall,
                extra=_extra(model, info["X_struct"]))


def _extra(model, X_fit):
    """What the learner decided and how much of its input it keeps -- for the report.

    On (at most) 2000 of the rows it was fitted on: the fraction of the preprocessed
    input's variance that layer 1's codes reconstruct
    (:func:`~sklearn_structlearn._information.explained_variance`), and the fraction a
    linear read-out of what ``transform`` returns recovers on held-out rows
    (:func:`~sklearn_structlearn._information.decoding_information`, with its Gaussian
    bound in bits) -- against the binned entropies of ``entropies_``.
    """
    from sklearn_structlearn import DeepStructureLearner
    from sklearn_structlearn._information import decoding_information, explained_variance

    learner = getattr(model, "learner", model)
    if not isinstance(learner, DeepStructureLearner):
        return None
    X = np.asarray(X_fit[:2000], dtype=np.float64)
    P = learner._preprocess(X)
    codes = learner._forward(X, 1, codes=True)
    r2_dec, bits = decoding_information(P, model.transform(X))
    return dict(n_layers=int(learner.n_layers_),
                widths=[int(layer.n_components_) for layer in learner.layers_],
                group_sizes=[int(layer.group_size) for layer in learner.layers_],
                alphas=[float(layer.alpha_) for layer in learner.layers_],
                connectivity_alphas=[float(layer.connectivity_alpha_)
                                     for layer in learner.layers_],
                density=[float(layer.connectivity_.mean()) for layer in learner.layers_],
                active=float(np.mean(codes != 0)),
                entropies=[float(h) for h in learner.entropies_],
                explained_variance=float(explained_variance(P, codes,
                                                            learner.layers_[0].components_)),
                decodable_variance=float(r2_dec), decodable_bits=float(bits))


# ---------------------------------------------------------------------------- report
def report(results, datasets, args, meta):
    lines = [
        "# Features benchmark: learned representations + logistic regression",
        "",
        f"Date {meta['date']}; machine: {meta['machine']}; threads pinned to {args.threads} "
        f"(BLAS, OpenMP, Numba); load average (1, 5, 15 min) at start {meta['load']}, at the "
        f"end {meta.get('load_end', '-')}; total wall time {meta.get('total_wall', '-')}."
        + (" **Quick mode (subsamples).**" if args.quick else ""),
        "",
        "Read-out for every representation: StandardScaler + LogisticRegression (lbfgs), C "
        "chosen on the training data only (small sets: 3-fold inner CV over "
        f"{list(SMALL_CS)}; Fashion-MNIST: hold-out of {args.holdout_sizes[0]} / "
        f"{args.holdout_sizes[1]} training images over {list(FASHION_CS)}, then refit). "
        "`fit` = learning the representation (no labels); `transform` = computing it for "
        "the classifier's train and test data. CPU = `time.process_time` of this process "
        "(all its threads; joblib worker processes are not counted). On a shared machine "
        "wall times are inflated by the other jobs; compare CPU times and ratios.",
        "",
    ]
    for name, rows in results.items():
        lines.append(f"## {name}: {datasets[name]['protocol']}")
        lines.append("")
        table = []
        for rep, r in rows.items():
            if r is None:
                continue
            acc = f"{r['accuracy']:.4f}"
            if r.get("accuracy_std") is not None:
                acc += f" ± {r['accuracy_std']:.4f}"
            C = r["C"]
            C = ", ".join(f"{c:g}" for c in C) if isinstance(C, list) else f"{C:g}"
            table.append(dict(rep=rep, acc=acc, width=r["width"], fit_wall=r["fit_wall"],
                              fit_cpu=r["fit_cpu"], tf=r["transform_wall"], C=C))
        lines.append(format_table(table, [
            ("rep", "representation", None), ("acc", "accuracy", None),
            ("width", "width", None), ("fit_wall", "fit wall", fmt_seconds),
            ("fit_cpu", "fit CPU", fmt_seconds), ("tf", "transform wall", fmt_seconds),
            ("C", "C", None)]))
        lines.append("")
        for rep, r in rows.items():
            extra = (r or {}).get("extra") or (r or {}).get("folds", [{}])[0].get("extra")
            if extra:
                lines.append(
                    f"- `{rep}`{' (fold 0)' if 'folds' in r else ''}: depth "
                    f"{extra['n_layers']}, units {extra['widths']}, groups of "
                    f"{extra['group_sizes']}, alpha {[round(a, 4) for a in extra['alphas']]}, "
                    f"connectivity_alpha {[float(f'{c:.3g}') for c in extra['connectivity_alphas']]}, "
                    f"connection density {[round(d, 3) for d in extra['density']]}; layer-1 "
                    f"codes {extra['active']:.1%} active, explain "
                    f"{extra['explained_variance']:.1%} of the input's variance; a linear "
                    f"read-out of the outputs recovers {extra['decodable_variance']:.1%} of it "
                    f"on held-out rows ({extra['decodable_bits']:.0f} bits, Gaussian bound); "
                    f"binned entropies (input, layers) "
                    f"{[round(h) for h in extra['entropies']]} bits.")
        lines.append("")
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="subsamples: Fashion-MNIST 2000 / 5000 / 2000 images")
    p.add_argument("--datasets", nargs="+", default=["breast_cancer", "wine", "digits", "fashion"],
                   choices=["breast_cancer", "wine", "digits", "fashion"])
    p.add_argument("--reps", nargs="+", default=list(REPRESENTATIONS), choices=REPRESENTATIONS)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", default=None, help="Fashion-MNIST directory")
    p.add_argument("--fashion-sizes", type=int, nargs=3, default=None,
                   metavar=("STRUCT", "TRAIN", "TEST"),
                   help="images to learn the representation on / train the LR on / test on "
                        "(default 20000 60000 10000; --quick 2000 5000 2000)")
    p.add_argument("--json", default=None, help="write every figure to this file")
    args = p.parse_args(argv)
    if args.fashion_sizes is None:
        args.fashion_sizes = (2000, 5000, 2000) if args.quick else (20000, 60000, 10000)
    n_train = args.fashion_sizes[1]
    # the hold-out that picks C: a third / a sixth of the training images, at most 20k / 10k
    args.holdout_sizes = (min(20000, n_train // 3), min(10000, n_train // 6))
    refuse_existing(p, args.json)
    return args


def main(argv=None):
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    meta = dict(date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                machine=f"{platform.machine()}, {os.cpu_count()} cores, "
                        f"Python {platform.python_version()}",
                load=", ".join(f"{v:.1f}" for v in os.getloadavg()))
    start = time.perf_counter()
    datasets = load_datasets(args.datasets, args)
    results = {}
    with pinned_threads(args.threads):
        for name, info in datasets.items():
            results[name] = {}
            for rep in args.reps:
                if rep in IMAGE_ONLY and info.get("image_shape") is None:
                    continue
                _log(f"[{name}] {rep}")
                t0 = time.perf_counter()
                r = (run_fashion(info, rep, args) if name == "fashion"
                     else run_small(name, info, rep, args))
                if r is None:
                    continue
                results[name][rep] = r
                _log(f"  -> accuracy {r['accuracy']:.4f}, width {r['width']} "
                     f"[{time.perf_counter() - t0:.0f}s]")
    meta["load_end"] = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    meta["total_wall"] = fmt_seconds(time.perf_counter() - start)
    print(report(results, datasets, args, meta))
    if args.json:
        dump_json_new(args.json, dict(meta=meta, args=vars(args), results=results),
                      default=float)


if __name__ == "__main__":
    main()
