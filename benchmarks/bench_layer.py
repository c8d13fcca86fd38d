"""Layer fit vs scikit-learn's MiniBatchDictionaryLearning, on the same objective.

With ``group_size=1`` and ``connectivity_alpha=0`` the layer minimises exactly
MiniBatchDictionaryLearning's objective (per sample, averaged)::

    1/n sum_i 1/2 ||x_i - D^T a_i||^2 + alpha ||a_i||_1     s.t. ||D_k|| <= 1

A dictionary is judged by the objective with its *optimal* codes, computed for every
dictionary by the same tight solver (relative gap 1e-8), so the solvers' own code
accuracy does not enter. Each method is run with growing budgets (outer iterations /
epochs) from the same seed; the trajectory (time, objective) gives the time to reach
within 1% of the best objective either method reached.

    python benchmarks/bench_layer.py [--quick] [--threads 2] [--json out.json]
"""

import argparse
import json
import os
import platform
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import measure, pinned_threads  # noqa: E402

from sklearn.decomposition import MiniBatchDictionaryLearning  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from sklearn_structlearn import GroupSparseCodingLayer, group_sparse_encode  # noqa: E402
from sklearn_structlearn.datasets import fashion_mnist_available, load_fashion_mnist  # noqa: E402
from sklearn_structlearn.objective import code_objective  # noqa: E402


def dictionary_objective(X, D, alpha):
    """Objective of a dictionary: its optimal codes by a tight solve."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        A = group_sparse_encode(X, D, alpha=alpha, tol=1e-8, max_iter=2000)
    return float(code_objective(X, D, A, alpha).mean())


def run_layer(X, n_components, alpha, budget, seed):
    layer = GroupSparseCodingLayer(
        n_components=n_components, alpha=alpha, connectivity_alpha=0.0, max_iter=budget,
        tol=0.0, transform_tol=1e-4, random_state=seed,
    )
    layer.fit(X)
    return layer.components_


def run_mbdl(X, n_components, alpha, budget, seed, batch_size):
    mbdl = MiniBatchDictionaryLearning(
        n_components=n_components, alpha=alpha, max_iter=budget, batch_size=batch_size,
        random_state=seed, tol=0.0, max_no_improvement=None, fit_algorithm="cd",
        transform_algorithm="lasso_cd",
    )
    mbdl.fit(X)
    return mbdl.components_


def trajectory(name, fit, X, alpha, budgets):
    points = []
    for budget in budgets:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            timing, D = measure(lambda: fit(budget), repeats=1)
        obj = dictionary_objective(X, D, alpha)
        points.append({"budget": budget, "wall": timing.wall, "cpu": timing.cpu, "objective": obj})
        print(f"  {name:28s} budget {budget:4d}  wall {timing.wall:8.2f}s  cpu {timing.cpu:8.2f}s"
              f"  objective {obj:.6f}", flush=True)
    return points


def time_to_reach(points, target):
    for p in points:
        if p["objective"] <= target:
            return p
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()

    n, K = (2000, 64) if args.quick else (10000, 128)
    if fashion_mnist_available():
        X, _ = load_fashion_mnist(subset="train", n_samples=n, random_state=0)
        X = X.astype(np.float64)
        data = f"Fashion-MNIST train subset n={n}"
    else:
        from sklearn.datasets import load_digits

        X = load_digits().data[:n] / 16.0
        data = "digits (Fashion-MNIST not installed)"
    X = X - X.mean(axis=0)  # both methods see the same centred data
    alpha = 1.0
    seed = 0
    batch_size = 256
    print(f"# layer fit vs MiniBatchDictionaryLearning: {data}, p={X.shape[1]}, K={K}, "
          f"alpha={alpha}, threads={args.threads}")
    print(f"# {platform.platform()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")

    # warm the JIT cache outside the timings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        run_layer(X[:200], 16, alpha, 1, seed)
    with pinned_threads(args.threads):
        ours = trajectory("GroupSparseCodingLayer", lambda b: run_layer(X, K, alpha, b, seed), X,
                          alpha, [1, 2, 4, 8, 16, 32] if args.quick else [1, 2, 4, 8, 16, 32, 64])
        theirs = trajectory(
            "MiniBatchDictionaryLearning",
            lambda b: run_mbdl(X, K, alpha, b, seed, batch_size), X, alpha,
            [1, 2, 4, 8, 16] if args.quick else [1, 2, 4, 8, 16, 32],
        )
    best = min(p["objective"] for p in ours + theirs)
    target = best * 1.01
    a, b = time_to_reach(ours, target), time_to_reach(theirs, target)
    print(f"\nbest objective {best:.6f}; target (within 1%) {target:.6f}")
    fmt = lambda p: "not reached" if p is None else f"{p['wall']:.2f}s wall / {p['cpu']:.2f}s cpu"  # noqa: E731
    print(f"| method | time to target | final objective |\n|---|---|---|")
    print(f"| GroupSparseCodingLayer | {fmt(a)} | {ours[-1]['objective']:.6f} |")
    print(f"| MiniBatchDictionaryLearning | {fmt(b)} | {theirs[-1]['objective']:.6f} |")
    if a is not None and b is not None:
        print(f"\nspeed-up (wall): {b['wall'] / a['wall']:.1f}x")
    elif a is not None:
        print("\nMiniBatchDictionaryLearning did not reach the target within its budgets")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"ours": ours, "mbdl": theirs, "best": best, "data": data}, f, indent=1)


if __name__ == "__main__":
    main()
