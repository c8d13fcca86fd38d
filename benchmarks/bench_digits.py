"""StructuredNetClassifier on the 8x8 digits (default and shared-weight structures) against
two MLPs and a small CNN, same run.

For each seed the digits are split 75/25 (stratified, ``random_state=seed``) and five
models are fitted on the same training rows, with every thread pool pinned to
``--threads`` (BLAS, Numba, torch):

- ``StructuredNetClassifier(random_state=seed, n_jobs=threads)``: the defaults (structure
  learned by ``DeepStructureLearner()`` sized to the data, trained by skorch);
- ``StructuredNetClassifier(SharedWeightLearner(kernel_size=3))``: the classifier's
  defaults on a shared-weight structure (pixel grid recovered from the data, 32 and 64
  shared 3x3 kernels learned without labels, 2x2 max pooling: a small CNN's layout);
- ``MLPClassifier(hidden_layer_sizes=(100,), random_state=seed)``: scikit-learn's
  defaults (Adam, learning rate 1e-3, up to 200 epochs, stops when the training loss
  stalls);
- ``skorch MLP``: a plain 64-100-10 ReLU network trained by skorch exactly as the
  structured one (Adam, learning rate 3e-3, batches of 128, 10% validation split,
  early stopping on the validation loss with patience 10 and relative tolerance 1e-2,
  best weights restored, up to 200 epochs), seeded by ``seed``;
- ``skorch small CNN``: conv3x3(32)-pool-conv3x3(64)-pool-linear, trained the same way
  (the layout the shared-weight structure recovers, designed by hand).

Reported per model and seed: test accuracy, fit wall and CPU time (``time.process_time``,
this process, all threads) and epochs; then the mean over seeds. Numba's compilation is
done (and timed) once before the first fit, so it is not in any fit time.

Run::

    python benchmarks/bench_digits.py                    # seeds 0-2, 1 thread
    python benchmarks/bench_digits.py --seeds 0 1 2 3 4 --json bench_digits.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import pinned_threads  # noqa: E402
from bench_classifier import make_cnn, make_mlp  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1, help="BLAS / Numba / torch threads")
    p.add_argument("--json", default=None, help="write the raw figures to this file")
    return p.parse_args(argv)


def skorch_net(torch, module, seed):
    """``module`` trained by skorch with the structured classifier's default regime."""
    from skorch import NeuralNetClassifier
    from skorch.callbacks import EarlyStopping
    from skorch.dataset import ValidSplit

    return NeuralNetClassifier(
        module, criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=3e-3,
        batch_size=128, max_epochs=200, iterator_train__shuffle=True,
        train_split=ValidSplit(0.1, stratified=True, random_state=seed),
        callbacks=[EarlyStopping(monitor="valid_loss", patience=10, threshold=1e-2,
                                 threshold_mode="rel", load_best=True)],
        verbose=0,
    )


def seeded(torch, seed, build):
    """``build()`` under ``torch.manual_seed(seed)``: the same initial weights every run."""
    torch.manual_seed(seed)
    return build()


def timed(fit):
    w0, c0 = time.perf_counter(), time.process_time()
    model = fit()
    return model, time.perf_counter() - w0, time.process_time() - c0


def main(argv=None):
    args = parse_args(argv)
    import torch
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    from sklearn_structlearn import DeepStructureLearner, StructuredNetClassifier
    from sklearn_structlearn.datasets import load_digits_images
    from sklearn_structlearn.sharing import SharedWeightLearner

    X, y = load_digits_images()
    X = X.astype(np.float32)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    rows = []
    load_start = os.getloadavg()
    try:
        with pinned_threads(args.threads), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Numba compiles (or loads from its cache) on the first fit: timed apart.
            _, compile_wall, compile_cpu = timed(lambda: DeepStructureLearner(
                max_depth=1, n_components=16, max_iter=2, random_state=0).fit(X[:100]))
            print(f"numba warm-up: {compile_wall:.1f} s wall, {compile_cpu:.1f} s CPU",
                  file=sys.stderr, flush=True)
            for seed in args.seeds:
                X_train, X_test, y_train, y_test = train_test_split(
                    X, y, test_size=0.25, random_state=seed, stratify=y)
                models = {
                    "StructuredNetClassifier()": lambda: StructuredNetClassifier(
                        random_state=seed, n_jobs=args.threads).fit(X_train, y_train),
                    "StructuredNetClassifier(SharedWeightLearner(kernel_size=3))":
                        lambda: StructuredNetClassifier(
                            SharedWeightLearner(kernel_size=3), random_state=seed,
                            n_jobs=args.threads).fit(X_train, y_train),
                    "MLPClassifier(100)": lambda: MLPClassifier(
                        hidden_layer_sizes=(100,), random_state=seed).fit(X_train, y_train),
                    "skorch MLP 64-100-10": lambda: skorch_net(torch, seeded(
                        torch, seed, lambda: make_mlp(torch, 64, [100], 10)), seed).fit(
                        X_train, y_train.astype(np.int64)),
                    "skorch small CNN 32/64": lambda: skorch_net(torch, seeded(
                        torch, seed, lambda: make_cnn(torch, 10, (8, 8))), seed).fit(
                        X_train, y_train.astype(np.int64)),
                }
                for name, fit in models.items():
                    model, wall, cpu = timed(fit)
                    accuracy = float(np.mean(model.predict(X_test) == y_test))
                    if hasattr(model, "n_epochs_"):
                        epochs = model.n_epochs_
                    elif hasattr(model, "n_iter_"):
                        epochs = model.n_iter_
                    else:
                        epochs = len(model.history)
                    row = {"model": name, "seed": seed, "accuracy": accuracy, "wall": wall,
                           "cpu": cpu, "epochs": int(epochs)}
                    if hasattr(model, "fit_times_"):
                        row.update({k: float(v) for k, v in model.fit_times_.items()})
                        row["n_layers"] = int(model.structure_learner_.n_layers_)
                    rows.append(row)
                    print(f"seed {seed} {name:28s} accuracy {accuracy:.4f} fit {wall:6.1f} s "
                          f"wall {cpu:6.1f} s CPU, {epochs} epochs", file=sys.stderr,
                          flush=True)
    finally:
        torch.set_num_threads(previous_threads)
    load_end = os.getloadavg()

    print(f"# digits, 75/25 split, seeds {args.seeds}, {args.threads} thread(s); "
          f"{datetime.date.today()}, {platform.node()}, {os.cpu_count()} cores, load "
          f"{load_start[0]:.1f} -> {load_end[0]:.1f}; torch {torch.__version__}\n")
    print("| model | seed | test accuracy | fit wall (s) | fit CPU (s) | epochs |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['model']} | {row['seed']} | {100 * row['accuracy']:.2f}% | "
              f"{row['wall']:.1f} | {row['cpu']:.1f} | {row['epochs']} |")
    print("\n| model | mean accuracy | min-max | mean fit wall (s) | mean fit CPU (s) |")
    print("|---|---|---|---|---|")
    for name in dict.fromkeys(row["model"] for row in rows):
        mine = [row for row in rows if row["model"] == name]
        acc = [row["accuracy"] for row in mine]
        print(f"| {name} | {100 * np.mean(acc):.2f}% | {100 * min(acc):.2f}-"
              f"{100 * max(acc):.2f}% | {np.mean([r['wall'] for r in mine]):.1f} | "
              f"{np.mean([r['cpu'] for r in mine]):.1f} |")
    structured = [row for row in rows if "structure_cpu" in row]
    for name in dict.fromkeys(row["model"] for row in structured):
        mine = [row for row in structured if row["model"] == name]
        print(f"\n{name} stages (mean): structure "
              f"{np.mean([r['structure_wall'] for r in mine]):.1f} s wall / "
              f"{np.mean([r['structure_cpu'] for r in mine]):.1f} s CPU, training "
              f"{np.mean([r['training_wall'] for r in mine]):.1f} s wall / "
              f"{np.mean([r['training_cpu'] for r in mine]):.1f} s CPU")
    if structured:
        print(f"numba warm-up {compile_wall:.1f} s wall (not included)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows, "load": [load_start, load_end],
                       "compile": [compile_wall, compile_cpu],
                       "machine": {"python": platform.python_version(),
                                   "torch": torch.__version__, "cpus": os.cpu_count()}},
                      f, indent=1)
    return rows


if __name__ == "__main__":
    main()
