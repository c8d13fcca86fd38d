"""Learned structure vs fully connected MLP vs expert CNN on Fashion-MNIST.

The claim of the method: a network whose structure (connectivity, pooling groups, depth)
is learned *without labels* classifies about as well as an expert-designed CNN (within
one point of test accuracy) and better than an unstructured MLP. This benchmark trains,
on the same Fashion-MNIST training subset and with exactly the same supervised budget:

- ``structured``: :class:`~sklearn_structlearn.classifier.StructuredNetClassifier`
  (structure learned by ``DeepStructureLearner`` on the training images, exported in
  ``"feedforward"`` mode with a linear head, then trained with the labels);
- ``dense-structured`` (ablation): the same network -- same preprocessing, widths,
  groups, pooling, thresholds -- but with *all-ones* masks and a random initialisation:
  what is left when the learned structure is taken away;
- ``mlp``: a fully connected ReLU MLP with the same depth and the same hidden widths
  (units per learned layer), random init, inputs standardised per pixel;
- ``cnn``: 2 conv layers (32 and 64 channels, 3x3, padding 1), ReLU and 2x2 max-pool
  after each, then a linear head; inputs standardised.

All four are trained by the same skorch configuration, the one
:class:`~sklearn_structlearn.StructuredNetClassifier` builds for its own network
(``_make_net`` / ``_configure`` / ``_train``): Adam, same learning rate, batch size,
epoch budget, the same validation split (early stopping on the validation loss, best
weights restored), torch threads pinned (``--threads``). Test accuracy is on the 10,000
official test images.

Run::

    python benchmarks/bench_classifier.py --quick                 # 3000 train images
    python benchmarks/bench_classifier.py --json bench_classifier.json   # 10000 train images
    # the run recorded in RESULTS.md (~20 min on 2 shared cores):
    python benchmarks/bench_classifier.py --n-train 20000 --max-structure-samples 2000 \
        --n-components 256 --group-size 4 --max-depth 2 --structure-max-iter 10 \
        --max-epochs 15 --threads 1 --json bench_classifier.json

Needs torch and the Debian package ``dataset-fashion-mnist`` (files under
``/usr/share/datasets/fashion-mnist/``, or ``--data PATH``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import format_table, pinned_threads  # noqa: E402


def _log(message):
    print(message, file=sys.stderr, flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 3000 training images, --max-epochs 10 unless given")
    p.add_argument("--n-train", type=int, default=None,
                   help="training images (stratified subset; default 10000, --quick 3000)")
    p.add_argument("--max-epochs", type=int, default=None, help="epoch budget (default 30)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--validation-fraction", type=float, default=0.1)
    p.add_argument("--n-iter-no-change", type=int, default=5)
    p.add_argument("--tol", type=float, default=1e-2,
                   help="relative decrease of the validation loss counted as an improvement")
    p.add_argument("--threads", type=int, default=2, help="torch / BLAS / numba threads")
    p.add_argument("--seed", type=int, default=0)
    # structure learner
    p.add_argument("--max-depth", type=int, default=2)
    p.add_argument("--n-components", type=int, default=256)
    p.add_argument("--group-size", type=int, default=4)
    p.add_argument("--connectivity-alpha", default="auto",
                   help='"auto" or a float (connectivity penalty of every layer)')
    p.add_argument("--preprocessing", default="zca", choices=["zca", "standardize", "none"])
    p.add_argument("--structure-max-iter", type=int, default=30)
    p.add_argument("--max-structure-samples", type=int, default=None,
                   help="rows used to learn the structure (default: all training rows)")
    p.add_argument("--batch-norm", action="store_true",
                   help="StructuredNetClassifier(batch_norm=True): BatchNorm1d before the head")
    p.add_argument("--dropout", type=float, default=0.0,
                   help="StructuredNetClassifier(dropout=...) before the head")
    p.add_argument("--encoder-learning-rate", type=float, default=None,
                   help="StructuredNetClassifier(encoder_learning_rate=...) "
                        "(default: --learning-rate)")
    p.add_argument("--models", nargs="+", default=["structured", "dense-structured", "mlp", "cnn"],
                   choices=["structured", "dense-structured", "mlp", "cnn"])
    p.add_argument("--data", default=None, help="directory of the Fashion-MNIST idx files")
    p.add_argument("--json", default=None, help="write raw figures to this file")
    p.add_argument("--verbose", type=int, default=0)
    args = p.parse_args(argv)
    if args.n_train is None:
        args.n_train = 3000 if args.quick else 10000
    if args.max_epochs is None:
        args.max_epochs = 10 if args.quick else 30
    if args.connectivity_alpha != "auto":
        args.connectivity_alpha = float(args.connectivity_alpha)
    if args.preprocessing == "none":
        args.preprocessing = None
    return args


# ---------------------------------------------------------------------------------------
# Peer networks
# ---------------------------------------------------------------------------------------

def make_mlp(torch, n_features, widths, n_classes):
    layers, n_in = [], n_features
    for width in widths:
        layers += [torch.nn.Linear(n_in, width), torch.nn.ReLU()]
        n_in = width
    layers.append(torch.nn.Linear(n_in, n_classes))
    return torch.nn.Sequential(*layers)


def make_cnn(torch, n_classes, image_shape=(28, 28), channels=(32, 64), kernel_size=3):
    """conv(k x k)-ReLU-maxpool(2) per entry of ``channels``, then a linear head."""
    nn = torch.nn
    h, w = image_shape
    layers, n_in = [nn.Unflatten(1, (1, h, w))], 1
    for n_out in channels:
        layers += [nn.Conv2d(n_in, n_out, kernel_size, padding=kernel_size // 2), nn.ReLU(),
                   nn.MaxPool2d(2)]
        n_in, h, w = n_out, h // 2, w // 2
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(n_in * h * w, n_classes))


def make_dense_structured(torch, learner, n_classes, rng):
    """The learned network's architecture with all-ones masks and random unit-norm atoms."""
    from sklearn_structlearn.export import (
        LayerSpec,
        build_torch_module,
        layer_specs_from_estimator,
    )

    specs = []
    for layer in learner.layers_:
        D = rng.standard_normal(layer.components_.shape)
        D /= np.linalg.norm(D, axis=1, keepdims=True)
        specs.append(LayerSpec(D, mask=np.ones(D.shape, dtype=bool), alpha=layer.alpha_,
                               group_size=layer.group_size, positive=layer.positive_code,
                               pooling=layer.pooling))
    _, pre = layer_specs_from_estimator(learner)  # the learner's own preprocessing
    return build_torch_module(specs, mode="feedforward", preprocessing=pre, n_classes=n_classes)


def count_parameters(module, nonzero=False):
    total = 0
    for sub in module.modules():
        mask = getattr(sub, "mask", None)
        for name, param in sub.named_parameters(recurse=False):
            if nonzero and name == "weight" and mask is not None and mask.shape == param.shape:
                total += int(mask.sum())
            else:
                total += param.numel()
    return total


# ---------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------

def train_peer(torch, name, module, X_tr, y_tr, X_val, y_val, X_test, y_test, clf, seed):
    """Train ``module`` exactly as ``clf`` trains its own network (same skorch set-up)."""
    from sklearn_structlearn.classifier import _import_torch

    _, parts = _import_torch()

    def f32(a):
        return np.ascontiguousarray(a, dtype=np.float32)

    net = clf._make_net(module, 10, parts, torch)
    clf._configure(net, parts, valid=(f32(X_val), np.asarray(y_val, dtype=np.int64)))
    w0, c0 = time.perf_counter(), time.process_time()
    n_epochs = clf._train(net, torch, None, seed, f32(X_tr), np.asarray(y_tr, np.int64),
                          epochs=None)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    with torch.no_grad():
        logits = net.module_.eval()(torch.from_numpy(f32(X_test)))
    accuracy = float((logits.argmax(dim=1).numpy() == y_test).mean())
    return {
        "model": name,
        "test_accuracy": accuracy,
        "params": count_parameters(module),
        "nonzero_params": count_parameters(module, nonzero=True),
        "structure_wall": None,
        "structure_cpu": None,
        "train_wall": wall,
        "train_cpu": cpu,
        "epochs": n_epochs,
        "best_epoch": dict(net.callbacks_)["early_stopping"].best_epoch_,
        "best_val_accuracy": max(net.history[:, "valid_acc"]),
        "history": _epochs(net.history),
    }


def _epochs(history):
    """skorch's history without the per-batch records (JSON-friendly)."""
    return [{k: v for k, v in row.items() if k != "batches"} for row in history]


def main(argv=None):
    args = parse_args(argv)
    import torch

    from sklearn_structlearn import DeepStructureLearner, StructuredNetClassifier
    from sklearn_structlearn.datasets import fashion_mnist_available, load_fashion_mnist

    if not fashion_mnist_available(args.data):
        sys.exit("Fashion-MNIST not found: install the Debian package dataset-fashion-mnist "
                 "(apt-get install -y dataset-fashion-mnist) or pass --data PATH.")
    X_train, y_train = load_fashion_mnist(args.data, subset="train", n_samples=args.n_train,
                                          random_state=args.seed)
    X_test, y_test = load_fashion_mnist(args.data, subset="test")
    n_classes = 10
    _log(f"Fashion-MNIST: {X_train.shape[0]} train, {X_test.shape[0]} test images; "
         f"{args.threads} threads, <= {args.max_epochs} epochs")

    # The validation split the classifier draws, reproduced for the peers.
    split_seed, _, _, torch_seed = StructuredNetClassifier._seeds(args.seed)
    X_tr, X_val, y_tr, y_val = StructuredNetClassifier._split(
        X_train, y_train, args.validation_fraction, split_seed)

    rows = []
    # The machine may be shared: record how busy it was (wall time inflates, CPU does not).
    args.load_start = os.getloadavg()
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    clf = None
    try:
        with pinned_threads(args.threads), warnings.catch_warnings():
            warnings.simplefilter("ignore", category=Warning)
            learner = DeepStructureLearner(
                max_depth=args.max_depth, n_components=args.n_components,
                group_size=args.group_size, connectivity_alpha=args.connectivity_alpha,
                preprocessing=args.preprocessing, image_shape=(28, 28),
                max_iter=args.structure_max_iter)
            clf = StructuredNetClassifier(
                learner, max_structure_samples=args.max_structure_samples,
                batch_norm=args.batch_norm, dropout=args.dropout,
                encoder_learning_rate=args.encoder_learning_rate,
                max_epochs=args.max_epochs, batch_size=args.batch_size,
                learning_rate=args.learning_rate,
                validation_fraction=args.validation_fraction,
                n_iter_no_change=args.n_iter_no_change, tol=args.tol, random_state=args.seed,
                n_jobs=args.threads, verbose=args.verbose,
            )
            _log("structured: learning the structure, then training ...")
            clf.fit(X_train, y_train)
            learner = clf.structure_learner_
            widths = [layer.n_components_ for layer in learner.layers_]
            groups = [layer.n_groups_ for layer in learner.layers_]
            fan_in = [float(layer.connectivity_.sum(axis=1).mean()) for layer in learner.layers_]
            arch = " -> ".join(f"{w}u/{g}g fan-in {f:.0f}" for w, g, f in zip(widths, groups, fan_in))
            if "structured" in args.models:
                times = clf.fit_times_
                rows.append({
                    "model": "structured",
                    "arch": f"learned: {arch}",
                    "test_accuracy": float(clf.score(X_test, y_test)),
                    "params": clf.n_parameters(),
                    "nonzero_params": clf.n_parameters(nonzero=True),
                    "structure_wall": times["structure_wall"],
                    "structure_cpu": times["structure_cpu"],
                    "train_wall": times["training_wall"],
                    "train_cpu": times["training_cpu"],
                    "epochs": clf.n_epochs_,
                    "best_epoch": clf.best_epoch_,
                    "best_val_accuracy": max(clf.history_[:, "valid_acc"]),
                    "history": _epochs(clf.history_),
                })
                _log(f"structured ({arch}): test accuracy {rows[-1]['test_accuracy']:.4f}")

            def dense_structured():
                # Same head (batch norm, dropout) as the structured net: only the masks
                # and the unsupervised initialisation differ.
                module = make_dense_structured(torch, learner, n_classes,
                                               np.random.default_rng(args.seed))
                clf._add_head_regularisers(module, torch)
                return module

            def init(make):
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(torch_seed)
                    return make()

            scale_mean, scale_std = X_tr.mean(axis=0), X_tr.std(axis=0) + 1e-3
            pix_mean, pix_std = float(X_tr.mean()), float(X_tr.std())
            peers = {
                "dense-structured": (
                    dense_structured,
                    lambda X: X, f"{arch.split(' fan-in')[0]}..., all-ones masks, random init"),
                "mlp": (lambda: make_mlp(torch, X_train.shape[1], widths, n_classes),
                        lambda X: (X - scale_mean) / scale_std,
                        "dense ReLU " + " -> ".join(map(str, widths))),
                "cnn": (lambda: make_cnn(torch, n_classes),
                        lambda X: (X - pix_mean) / pix_std,
                        "conv32-pool-conv64-pool-linear"),
            }
            for name in ("dense-structured", "mlp", "cnn"):
                if name not in args.models:
                    continue
                make, prep, desc = peers[name]
                _log(f"{name}: training ...")
                row = train_peer(torch, name, init(make), prep(X_tr), y_tr, prep(X_val), y_val,
                                 prep(X_test), y_test, clf, torch_seed)
                row["arch"] = desc
                rows.append(row)
                _log(f"{name}: test accuracy {row['test_accuracy']:.4f}")
    finally:
        torch.set_num_threads(prev_threads)

    args.load_end = os.getloadavg()
    print(report(rows, args, clf))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "args": vars(args),
                "n_train": int(X_train.shape[0]),
                "n_test": int(X_test.shape[0]),
                "machine": {"python": platform.python_version(), "torch": torch.__version__,
                            "cpus": os.cpu_count()},
                "structure_summary": clf.structure_learner_.summary() if clf else None,
                "rows": rows,
            }, f, indent=1, default=float)
    return rows


def report(rows, args, clf):
    def pct(v):
        return f"{100 * v:.2f}"

    def sec(v):
        return f"{v:.1f}"

    columns = [
        ("model", "model", None),
        ("arch", "architecture", None),
        ("test_accuracy", "test acc. %", pct),
        ("best_val_accuracy", "best val. acc. %", pct),
        ("params", "params", str),
        ("nonzero_params", "nonzero params", str),
        ("structure_wall", "structure wall s", sec),
        ("structure_cpu", "structure CPU s", sec),
        ("train_wall", "training wall s", sec),
        ("train_cpu", "training CPU s", sec),
        ("epochs", "epochs", str),
        ("best_epoch", "best epoch", str),
    ]
    title = (f"Fashion-MNIST, {args.n_train} training images (10% validation), 10000 test; "
             f"Adam lr {args.learning_rate:g}, batch {args.batch_size}, <= {args.max_epochs} "
             f"epochs, patience {args.n_iter_no_change}, {args.threads} threads")
    lines = [format_table(rows, columns, title=title), ""]
    if getattr(args, "load_end", None):
        lines += [f"- load average (1/5/15 min) at start {args.load_start[0]:.1f}/"
                  f"{args.load_start[1]:.1f}/{args.load_start[2]:.1f}, at end "
                  f"{args.load_end[0]:.1f}/{args.load_end[1]:.1f}/{args.load_end[2]:.1f}"]
    acc = {r["model"]: r["test_accuracy"] for r in rows}
    if "structured" in acc:
        for peer in ("cnn", "mlp", "dense-structured"):
            if peer in acc:
                lines.append(f"- structured - {peer}: {100 * (acc['structured'] - acc[peer]):+.2f} "
                             "points")
        if "cnn" in acc and "mlp" in acc:
            ok = acc["structured"] >= acc["cnn"] - 0.01 and acc["structured"] > acc["mlp"]
            lines.append(
                "- claim (within 1 point of the CNN and above the MLP): "
                + ("**reproduced**" if ok else "**not reproduced** in this run")
            )
    if clf is not None:
        lines += ["", "Learned structure:", "", "```", clf.structure_learner_.summary(), "```"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
