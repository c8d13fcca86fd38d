"""Shared-weight structure learned from unlabeled data vs CNNs vs MLP, original and shuffled pixels.

The claim of issue 14: a structure learned *without labels* finds the CNN's priors -- the
pixel grid (and so local receptive fields and weight sharing) and pooling -- and, once
trained with labels, classifies as well as a hand-designed CNN; and since nothing in it
reads the pixel grid, it keeps that accuracy when the pixels are shuffled by one fixed
permutation, where the CNN's prior is wrong.

For each pixel order (``original``, ``shuffled``) this script:

1. learns the structure on the training images, no labels
   (:class:`~sklearn_structlearn.sharing.SharedWeightLearner`): the input topology
   (:class:`~sklearn_structlearn.topology.InputTopologyLearner`, scored against the true
   grid -- the only use of the image shape), then shared-weight layers by group sparse
   coding of patches gathered through the recovered topology, pooled over neighbouring
   sites;
2. measures the shift invariance of the pooled outputs of every layer against random
   groups of the same units (:func:`~sklearn_structlearn.sharing.pooling_invariance_against_random`);
3. trains, with exactly the same supervised budget (``bench_classifier.train_peer``: the
   classifier's skorch set-up -- Adam, learning rate, batch size, epochs, early stopping
   on the same validation split, the same mini-batch seed), the learned network (``to_torch``), the small CNN
   (conv3x3(32)-pool-conv3x3(64)-pool-linear), the larger CNN
   (conv5x5(32)-pool-conv5x5(64)-pool-FC1024-dropout-linear) and a one-hidden-layer MLP;
   the CNNs see the shuffled images as they are. ``cnn-matched`` (not in the default
   ``--models``) is the control for a learned architecture other than the small CNN's: a
   CNN with the learned network's layers (``--n-kernels``, ``--kernel-size``, 2x2 max
   pooling), so that a change of depth or width is judged against the same change made by
   hand. Ablations of the learned start, same structure and masks: ``learned-random-init``
   (torch's default initialisation), ``learned-zero-bias`` (no code threshold) and
   ``learned-zero-head`` (a zero head: no random gradient reaches the learned kernels at
   the start).

Run::

    python benchmarks/bench_topology.py --quick                     # 3000 images, 3 epochs
    python benchmarks/bench_topology.py --n-train 20000 --json t.json
    python benchmarks/bench_topology.py --n-train 60000 --json t.json   # the full run

Needs torch and the Debian package ``dataset-fashion-mnist``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from datetime import date
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import format_table, pinned_threads  # noqa: E402
from bench_classifier import make_cnn, make_mlp, train_peer  # noqa: E402


def _log(message):
    print(message, file=sys.stderr, flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="3000 training images, 3 epochs")
    p.add_argument("--n-train", type=int, default=None,
                   help="training images (stratified subset; 60000 = all; default 10000)")
    p.add_argument("--n-test", type=int, default=None, help="test images (default: all 10000)")
    p.add_argument("--structure-samples", type=int, default=20000,
                   help="training images the structure is learned on (no labels)")
    p.add_argument("--pixels", nargs="+", default=["original", "shuffled"],
                   choices=["original", "shuffled"])
    p.add_argument("--models", nargs="+",
                   default=["learned", "cnn-small", "cnn-large", "mlp"],
                   choices=["learned", "learned-random-init", "learned-zero-bias",
                            "learned-zero-head", "cnn-small", "cnn-matched", "cnn-large", "mlp"])
    p.add_argument("--n-kernels", type=int, nargs="+", default=[32, 64],
                   help="families (kernels) per learned layer")
    p.add_argument("--kernel-size", type=int, default=5)
    p.add_argument("--pooling", default="max", choices=["max", "l2"])
    p.add_argument("--group-size", type=int, default=1)
    p.add_argument("--group-pooling", action="store_true",
                   help="pool the families of each sparse-coding group together "
                        "(n_kernels / group_size channels out of each layer)")
    p.add_argument("--connectivity-alpha", default="auto",
                   help='"auto" or a float (0: dense kernels inside the window)')
    p.add_argument("--n-patches", type=int, default=20000)
    p.add_argument("--structure-max-iter", type=int, default=20)
    p.add_argument("--mlp-width", type=int, default=1024)
    p.add_argument("--max-epochs", type=int, default=None, help="epoch budget (default 15)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--validation-fraction", type=float, default=0.1)
    p.add_argument("--n-iter-no-change", type=int, default=5)
    p.add_argument("--invariance-samples", type=int, default=300)
    p.add_argument("--threads", type=int, default=1, help="torch / BLAS / numba threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--permutation-seed", type=int, default=1)
    p.add_argument("--data", default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--figure", default=None,
                   help="save the recovered layout (shuffled pixels) to this PNG, the layer-1 "
                        "kernels beside it (<stem>_kernels.png)")
    p.add_argument("--verbose", type=int, default=0)
    args = p.parse_args(argv)
    if args.n_train is None:
        args.n_train = 3000 if args.quick else 10000
    if args.max_epochs is None:
        args.max_epochs = 3 if args.quick else 15
    if args.connectivity_alpha != "auto":
        args.connectivity_alpha = float(args.connectivity_alpha)
    return args


def make_large_cnn(torch, n_classes, image_shape=(28, 28)):
    """conv5x5(32)-pool-conv5x5(64)-pool-FC1024-dropout(0.5)-linear (TensorFlow's MNIST CNN)."""
    nn = torch.nn
    h, w = image_shape
    return nn.Sequential(
        nn.Unflatten(1, (1, h, w)),
        nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * (h // 4) * (w // 4), 1024), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(1024, n_classes),
    )


def reinitialise(torch, net, seed):
    """The learned architecture (same masks) with torch's default random initialisation."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for conv in net.layers:
            fresh = torch.nn.Conv2d(conv.weight.shape[1], conv.weight.shape[0], conv.kernel_size)
            with torch.no_grad():
                conv.weight.copy_(torch.where(conv.mask, fresh.weight.to(conv.weight.dtype), 0.0))
                conv.bias.copy_(fresh.bias.to(conv.bias.dtype))
    return net


def zero_biases(torch, net):
    """The learned kernels with zero biases (no code threshold at initialisation)."""
    with torch.no_grad():
        for conv in net.layers:
            conv.bias.zero_()
    return net


def zero_head(torch, net):
    """The learned kernels with a zero head: no random gradient reaches them at the start."""
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
    return net


def train(torch, module, data, args, seed, name):
    """Train ``module`` as the classifier trains its own network, with this run's budget."""
    from sklearn_structlearn.classifier import StructuredNetClassifier

    clf = StructuredNetClassifier(
        max_epochs=args.max_epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, n_iter_no_change=args.n_iter_no_change,
        validation_fraction=args.validation_fraction, verbose=args.verbose,
        random_state=args.seed)
    return train_peer(torch, name, module, *data, clf, seed)


def learn_structure(X_struct, args, permutation):
    from sklearn_structlearn.sharing import SharedWeightLearner

    learner = SharedWeightLearner(
        n_kernels=list(args.n_kernels), kernel_size=args.kernel_size, pooling=args.pooling,
        group_size=args.group_size, group_pooling=args.group_pooling,
        connectivity_alpha=args.connectivity_alpha, n_patches=args.n_patches,
        max_iter=args.structure_max_iter, random_state=args.seed, n_jobs=args.threads,
    )
    w0, c0 = time.perf_counter(), time.process_time()
    learner.fit(X_struct)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    topo = learner.topology_
    # The image shape is used here only, to score the recovered topology.
    recovery = topo.recovery((28, 28), permutation)
    return learner, {"structure_wall": wall, "structure_cpu": cpu, "recovery": recovery,
                     "grid_shape": list(topo.grid_shape_),
                     "objective": topo.layout_.objective,
                     "summary": learner.summary(),
                     "families": [{"n_families": layer.n_kernels,
                                   "n_outputs": layer.n_outputs,
                                   "family_size": int(layer.family_sizes()[0]),
                                   "kernel": f"{layer.kernel_size}x{layer.kernel_size}",
                                   "mask_density": float(layer.mask.mean())}
                                  for layer in learner.layers_]}


def invariance(learner, X_inv, permutation, args):
    from sklearn_structlearn.sharing import (
        family_pooling_groups,
        pooling_invariance_against_random,
    )

    out = []
    for depth, layer in enumerate(learner.layers_, start=1):
        def codes(X, depth=depth):
            return learner.layer_maps(X, depth, pooled=False).reshape(X.shape[0], -1)

        groups = family_pooling_groups(layer)
        row = {"layer": depth, "group": f"{layer.pooled_families} family(ies) x "
                                         f"{layer.pool_size}x{layer.pool_size} sites"}
        for center in (True, False):
            r = pooling_invariance_against_random(
                codes, X_inv, (28, 28), groups, pooling=layer.pooling, n_random=3,
                center=center, permutation=permutation, random_state=args.seed)
            key = "centred" if center else "uncentred"
            row[key] = {"learned": r["learned_change"], "random": r["random_change"],
                        "codes": r["codes_change"]}
        out.append(row)
    return out


def save_figure(path, learner, X_shuffled, permutation):
    """The recovered layout against the true grid (``path``) and the layer-1 kernels
    (``<path stem>_kernels.png``): the package's own pictures."""
    import matplotlib

    matplotlib.use("Agg")
    from sklearn_structlearn.plotting import plot_recovered_topology

    path = Path(path)
    plot_recovered_topology(learner, X_shuffled[0], (28, 28),
                            permutation=permutation).savefig(path, dpi=110)
    learner.plot_kernels().savefig(path.with_name(f"{path.stem}_kernels{path.suffix}"), dpi=110)


def main(argv=None):
    args = parse_args(argv)
    import torch

    from sklearn_structlearn.classifier import StructuredNetClassifier
    from sklearn_structlearn.datasets import (
        fashion_mnist_available,
        load_fashion_mnist,
        permute_pixels,
    )

    if not fashion_mnist_available(args.data):
        sys.exit("Fashion-MNIST not found: apt-get install -y dataset-fashion-mnist, or --data.")
    X_train, y_train = load_fashion_mnist(
        args.data, subset="train", n_samples=None if args.n_train >= 60000 else args.n_train,
        random_state=args.seed)
    X_test, y_test = load_fashion_mnist(args.data, subset="test", n_samples=args.n_test,
                                        random_state=args.seed)
    split_seed, _, _, torch_seed = StructuredNetClassifier._seeds(args.seed)
    X_tr, X_val, y_tr, y_val = StructuredNetClassifier._split(
        X_train, y_train, args.validation_fraction, split_seed)
    _, permutation = permute_pixels(X_tr[:1], random_state=args.permutation_seed)
    n_classes = 10
    _log(f"Fashion-MNIST: {X_tr.shape[0]} train, {X_val.shape[0]} validation, "
         f"{X_test.shape[0]} test; {args.threads} threads, <= {args.max_epochs} epochs")

    rows, structures, invariances = [], {}, {}
    args.load_start = os.getloadavg()
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        with pinned_threads(args.threads), warnings.catch_warnings():
            warnings.simplefilter("ignore", category=Warning)
            for pixels in args.pixels:
                perm = permutation if pixels == "shuffled" else None

                def order(X, perm=perm):
                    return X if perm is None else X[:, perm]

                data = (order(X_tr), y_tr, order(X_val), y_val, order(X_test), y_test)
                pix_mean, pix_std = float(X_tr.mean()), float(X_tr.std())
                col_mean, col_std = data[0].mean(axis=0), data[0].std(axis=0) + 1e-3

                def std_global(d):
                    return tuple((a - pix_mean) / pix_std if i % 2 == 0 else a
                                 for i, a in enumerate(d))

                def std_cols(d):
                    return tuple((a - col_mean) / col_std if i % 2 == 0 else a
                                 for i, a in enumerate(d))

                learner = None
                if any(name.startswith("learned") for name in args.models):
                    _log(f"[{pixels}] learning the structure (no labels) ...")
                    X_struct = data[0][:args.structure_samples]
                    learner, info = learn_structure(X_struct, args, perm)
                    structures[pixels] = info
                    _log(info["summary"])
                    _log(f"[{pixels}] topology recovery: {info['recovery']}")
                    if args.figure and pixels == "shuffled":
                        save_figure(args.figure, learner, data[0], perm)
                    X_inv = data[2][:args.invariance_samples]
                    invariances[pixels] = invariance(learner, X_inv, perm, args)
                    _log(f"[{pixels}] invariance: {invariances[pixels]}")

                def init(make):
                    with torch.random.fork_rng(devices=[]):
                        torch.manual_seed(torch_seed)
                        return make()

                def exported():
                    return learner.to_torch(n_classes=n_classes)

                peers = {
                    "learned": (exported, lambda d: d,
                                "learned: " + (structures.get(pixels, {}).get("summary", "")
                                               .replace("\n", "; "))),
                    "learned-zero-bias": (
                        lambda: zero_biases(torch, exported()),
                        lambda d: d, "learned kernels, zero biases"),
                    "learned-zero-head": (
                        lambda: zero_head(torch, exported()),
                        lambda d: d, "learned kernels, zero head"),
                    "learned-random-init": (
                        lambda: reinitialise(torch, exported(), torch_seed),
                        lambda d: d, "same learned structure, random init"),
                    "cnn-small": (lambda: make_cnn(torch, n_classes), std_global,
                                  "conv3x3(32)-pool-conv3x3(64)-pool-linear"),
                    "cnn-matched": (
                        lambda: make_cnn(torch, n_classes, channels=args.n_kernels,
                                         kernel_size=args.kernel_size), std_global,
                        f"CNN with the learned layers: conv{args.kernel_size}x"
                        f"{args.kernel_size}{tuple(args.n_kernels)}-pool per layer-linear"),
                    "cnn-large": (lambda: make_large_cnn(torch, n_classes), std_global,
                                  "conv5x5(32)-pool-conv5x5(64)-pool-FC1024-dropout-linear"),
                    "mlp": (lambda: make_mlp(torch, 784, [args.mlp_width], n_classes), std_cols,
                            f"dense ReLU {args.mlp_width}"),
                }
                for name in args.models:
                    make, prep, desc = peers[name]
                    _log(f"[{pixels}] {name}: training ...")
                    row = train(torch, init(make), prep(data), args, torch_seed, name)
                    row.update(model=name, pixels=pixels, arch=desc)
                    if name.startswith("learned"):
                        row["structure_wall"] = structures[pixels]["structure_wall"]
                        row["structure_cpu"] = structures[pixels]["structure_cpu"]
                    rows.append(row)
                    _log(f"[{pixels}] {name}: test accuracy {row['test_accuracy']:.4f} "
                         f"({row['train_wall']:.0f} s wall, {row['train_cpu']:.0f} s CPU)")
    finally:
        torch.set_num_threads(prev_threads)
    args.load_end = os.getloadavg()
    print(report(rows, structures, invariances, args, X_tr.shape[0], X_test.shape[0]))
    if args.json:
        if os.path.exists(args.json):
            sys.exit(f"{args.json} exists; not overwriting it.")
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "date": str(date.today()),
                       "machine": {"python": platform.python_version(),
                                   "torch": torch.__version__, "cpus": os.cpu_count()},
                       "rows": rows, "structures": structures, "invariance": invariances},
                      f, indent=1, default=float)
    return rows


def report(rows, structures, invariances, args, n_train, n_test):
    def pct(v):
        return f"{100 * v:.2f}"

    def sec(v):
        return "-" if v is None else f"{v:.0f}"

    columns = [
        ("pixels", "pixels", None), ("model", "model", None),
        ("test_accuracy", "test acc. %", pct), ("best_val_accuracy", "best val. %", pct),
        ("params", "params", str), ("nonzero_params", "non-zero", str),
        ("structure_wall", "structure wall s", sec), ("structure_cpu", "structure CPU s", sec),
        ("train_wall", "training wall s", sec), ("train_cpu", "training CPU s", sec),
        ("epochs", "epochs", str), ("best_epoch", "best", str),
    ]
    for row in rows:
        row.setdefault("structure_wall", None)
        row.setdefault("structure_cpu", None)
    title = (f"Fashion-MNIST, {n_train} training images (+10% validation held out of them), "
             f"{n_test} test; Adam lr {args.learning_rate:g}, batch {args.batch_size}, <= "
             f"{args.max_epochs} epochs, patience {args.n_iter_no_change}, {args.threads} "
             f"thread(s)")
    lines = [format_table(rows, columns, title=title), ""]
    for pixels, info in structures.items():
        rec = info["recovery"]
        lines.append(
            f"- [{pixels}] recovered lattice {info['grid_shape'][0]}x{info['grid_shape'][1]}: "
            f"exact {100 * rec['exact']:.1f}% of pixels ({100 * rec['exact_informative']:.1f}% "
            f"of the {784 - rec['n_uninformative']} informative), true 4-neighbours adjacent "
            f"{100 * rec['neighbours']:.1f}%, symmetry {rec['symmetry']}")
        for fam in info["families"]:
            lines.append(f"  - {fam['n_families']} families of {fam['family_size']} units, "
                         f"{fam['kernel']} kernels, mask density {fam['mask_density']:.2f}")
    for pixels, layers in invariances.items():
        for row in layers:
            c, u = row["centred"], row["uncentred"]
            lines.append(
                f"- [{pixels}] layer {row['layer']} pooling ({row['group']}): relative change "
                f"under 1-pixel shifts, centred: learned {c['learned']:.3f} vs random "
                f"{c['random']:.3f} (units {c['codes']:.3f}); uncentred: {u['learned']:.3f} vs "
                f"{u['random']:.3f} (units {u['codes']:.3f})")
    acc = {(r["pixels"], r["model"]): r["test_accuracy"] for r in rows}
    for pixels in args.pixels:
        if (pixels, "learned") in acc and (pixels, "cnn-small") in acc:
            lines.append(f"- [{pixels}] learned - small CNN: "
                         f"{100 * (acc[pixels, 'learned'] - acc[pixels, 'cnn-small']):+.2f} points")
    if ("original", "learned") in acc and ("shuffled", "learned") in acc:
        lines.append("- learned, shuffled - original: "
                     f"{100 * (acc['shuffled', 'learned'] - acc['original', 'learned']):+.2f} points")
    for model in ("cnn-small", "cnn-large", "mlp"):
        if ("original", model) in acc and ("shuffled", model) in acc:
            lines.append(f"- {model}, shuffled - original: "
                         f"{100 * (acc['shuffled', model] - acc['original', model]):+.2f} points")
    lines.append(f"- load average at start {args.load_start[0]:.1f}, at end {args.load_end[0]:.1f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
