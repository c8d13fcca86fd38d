"""Layer fit vs scikit-learn's MiniBatchDictionaryLearning, on the same objective.

With ``group_size=1`` and ``connectivity_alpha=0`` the layer minimises exactly
MiniBatchDictionaryLearning's objective (per sample, averaged)::

    1/n sum_i 1/2 ||x_i - D^T a_i||^2 + alpha ||a_i||_1     s.t. ||D_k|| <= 1

A dictionary is judged by the objective with its *optimal* codes, computed for every
dictionary by the same tight solver (relative gap ``--score-tol``) and certified by the
duality gap: the log prints, beside each objective, the summed duality gaps over the summed
objectives (a bound on the relative suboptimality of the mean) and the time the scoring took,
which is never inside a timing. So the methods' own code accuracy does not enter. The
trajectories (time, objective) give the time each method needs to reach within 1% of the best
objective either reached, and the ratio of those times (wall and CPU).

How the two trajectories are timed:

- ``GroupSparseCodingLayer``: one full-batch fit from scratch per budget (``max_iter`` =
  budget, ``tol=0``). The layer has no warm start, and a fit of ``b`` iterations is not the
  beginning of a fit of ``2b`` (dead units are re-seeded during the first half of
  ``max_iter``), so each point is the time of a whole fit as a user would run it -- as
  MiniBatchDictionaryLearning's point at epoch ``e`` is that of ``fit(max_iter=e)``. (This
  costs the benchmark the sum of the budgets, not the time to each point.)
- ``MiniBatchDictionaryLearning``: one run, continued epoch by epoch, timed cumulatively (wall
  and CPU of the fitting only); the dictionary is scored at the ``--mbdl-epochs`` checkpoints,
  off the clock. The run is what ``MiniBatchDictionaryLearning(max_iter=e).fit(X)`` does after
  ``e`` epochs (scikit-learn 1.9.1, ``decomposition/_dict_learning.py``): ``fit`` draws the
  initial dictionary by a randomized SVD of all of ``X`` (atoms beyond ``min(n, p)`` are
  zero, re-sampled from the data at the first step) and shuffles a copy of ``X`` once, both
  from one ``RandomState``; it then calls ``_minibatch_step`` on the batches of that one
  order, cycled epoch after epoch, with a step counter running on across epochs (it sets
  the weights of the running statistics). ``partial_fit`` calls the same
  ``_minibatch_step`` with its own step counter ``n_steps_``. This script reproduces the
  initialisation and the shuffle with the public ``randomized_svd`` on the same
  ``RandomState`` object and hands both (``dict_init``, ``random_state``) to the estimator,
  whose ``partial_fit`` then takes the consecutive batches; dead atoms are re-sampled from
  the same random stream as in ``fit``. The differences: ``fit`` also runs its early-stopping
  check after each step (a dictionary copy and a norm; with ``tol=0`` and
  ``max_no_improvement=None`` it never stops), which the continued run does not pay, and
  ``partial_fit`` re-validates each batch (microseconds): if anything, the continued run
  favours MiniBatchDictionaryLearning. ``--quick`` (or ``--check-mbdl``)
  checks that after two epochs the continued run's dictionary equals ``fit(max_iter=2)``'s.

Both methods get ``--threads`` threads (BLAS and Numba pinned; the layer's ``n_jobs``);
the layer's kernels are compiled (or loaded from the cache) before the clock starts.

    python benchmarks/bench_layer.py [--quick] [--threads 2] [--json out.json]
    python benchmarks/bench_layer.py --n-components 1024 --threads 1 \\
        --layer-budgets 1 2 3 4 6 8 12 16 24 32 48 64 128 \\
        --mbdl-epochs 1 2 3 4 6 8 12 16 24 32 48 64 96 128 --json k1024.json   # 45 min
"""

import argparse
import os
import platform
import subprocess
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import dump_json_new, peak_rss_mib, pinned_threads, refuse_existing  # noqa: E402

import numba  # noqa: E402
import scipy  # noqa: E402
import sklearn  # noqa: E402
from sklearn.decomposition import MiniBatchDictionaryLearning  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.utils import gen_batches  # noqa: E402
from sklearn.utils.extmath import randomized_svd  # noqa: E402

from sklearn_structlearn import GroupSparseCodingLayer, group_sparse_encode  # noqa: E402
from sklearn_structlearn.datasets import fashion_mnist_available, load_fashion_mnist  # noqa: E402
from sklearn_structlearn.objective import code_duality_gap, code_objective  # noqa: E402

BATCH_SIZE = 256  # MiniBatchDictionaryLearning's mini-batches
SEED = 0


def clock():
    return time.perf_counter(), time.process_time()


def since(start):
    wall, cpu = clock()
    return wall - start[0], cpu - start[1]


def dictionary_objective(X, D, alpha, n_jobs, tol, max_iter=5000):
    """Objective of a dictionary with its optimal codes, and its certificate.

    Returns the mean objective, the summed duality gaps over the summed objectives (it
    bounds the relative suboptimality of the mean: the gap of each row bounds its own) and
    the seconds the scoring took.
    """
    start = time.perf_counter()
    with warnings.catch_warnings():
        # the certificate below says how tight the codes are, converged or not
        warnings.simplefilter("ignore", ConvergenceWarning)
        A = group_sparse_encode(X, D, alpha=alpha, tol=tol, max_iter=max_iter, n_jobs=n_jobs)
    primal = code_objective(X, D, A, alpha)
    gap = code_duality_gap(X, D, A, alpha)
    return float(primal.mean()), float(gap.sum() / primal.sum()), time.perf_counter() - start


def fit_layer(X, n_components, alpha, budget, threads):
    layer = GroupSparseCodingLayer(
        n_components=n_components, alpha=alpha, connectivity_alpha=0.0, max_iter=budget,
        tol=0.0, transform_tol=1e-4, random_state=SEED, n_jobs=threads,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0: never "converged"
        layer.fit(X)
    return layer.components_


def make_mbdl(X, n_components, alpha):
    """What ``MiniBatchDictionaryLearning.fit`` does before its loop: the estimator, ready
    for ``partial_fit``, and the shuffled copy of ``X`` whose batches it takes in order."""
    rng = np.random.RandomState(SEED)
    _, S, Vt = randomized_svd(X, n_components, random_state=rng)
    D0 = np.zeros((n_components, X.shape[1]))
    D0[:len(S)] = S[:, None] * Vt
    X_train = X.copy()
    rng.shuffle(X_train)
    mbdl = MiniBatchDictionaryLearning(
        n_components=n_components, alpha=alpha, batch_size=BATCH_SIZE, dict_init=D0,
        random_state=rng, fit_algorithm="cd", transform_algorithm="lasso_cd", tol=0.0,
        max_no_improvement=None,
    )
    return mbdl, X_train


def mbdl_epoch(mbdl, X_train):
    """One epoch; returns the number of ConvergenceWarnings of MBDL's code solver.

    Its ``lasso_cd`` stops at ``transform_max_iter`` (1000) coordinate sweeps per row; the
    warnings are counted rather than printed, so that no output is inside the timing.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        for batch in gen_batches(X_train.shape[0], BATCH_SIZE):
            mbdl.partial_fit(X_train[batch])
    return sum(issubclass(w.category, ConvergenceWarning) for w in caught)


def check_mbdl_continuation(X, n_components, alpha, threads, epochs=2):
    """The continued run equals ``fit(max_iter=epochs)`` (max abs difference of the atoms)."""
    with pinned_threads(threads):
        mbdl, X_train = make_mbdl(X, n_components, alpha)
        for _ in range(epochs):
            mbdl_epoch(mbdl, X_train)
        ref = MiniBatchDictionaryLearning(
            n_components=n_components, alpha=alpha, batch_size=BATCH_SIZE, max_iter=epochs,
            random_state=SEED, fit_algorithm="cd", transform_algorithm="lasso_cd", tol=0.0,
            max_no_improvement=None,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ref.fit(X)
    diff = float(np.abs(mbdl.components_ - ref.components_).max())
    print(f"# check: MBDL partial_fit continued for {epochs} epochs vs fit(max_iter={epochs}):"
          f" max |difference| of the atoms {diff:.3g}", flush=True)
    if diff > 1e-10:
        raise SystemExit("the continued MiniBatchDictionaryLearning run is not fit's run")
    return diff


def log_point(name, budget, unit, wall, cpu, score=None, note=""):
    line = f"  {name:28s} {budget:4d} {unit:10s} wall {wall:9.2f}s  cpu {cpu:9.2f}s"
    point = {"budget": budget, "wall": wall, "cpu": cpu}
    if score is not None:
        objective, gap, seconds = score
        line += f"  objective {objective:.6f}  (rel. gap {gap:.1e}, scored in {seconds:.1f}s)"
        point.update(objective=objective, relative_gap=gap, score_seconds=seconds)
    print(line + note, flush=True)
    return point


def layer_trajectory(X, K, alpha, budgets, threads, score):
    points = []
    for budget in budgets:
        start = clock()
        D = fit_layer(X, K, alpha, budget, threads)
        wall, cpu = since(start)
        points.append(log_point("GroupSparseCodingLayer", budget, "iterations", wall, cpu,
                                score(D)))
    return points


def mbdl_trajectory(X, K, alpha, checkpoints, score):
    points = []
    wall = cpu = 0.0
    start = clock()
    mbdl, X_train = make_mbdl(X, K, alpha)
    for epoch in range(1, max(checkpoints) + 1):
        n_warned = mbdl_epoch(mbdl, X_train)
        dw, dc = since(start)
        wall, cpu = wall + dw, cpu + dc
        point = log_point("MiniBatchDictionaryLearning", epoch, "epochs", wall, cpu,
                          score(mbdl.components_) if epoch in checkpoints else None,
                          f"  [{n_warned} codes unconverged]" if n_warned else "")
        if epoch in checkpoints:
            points.append(dict(point, unconverged_codes=n_warned))
        start = clock()  # scoring and logging stay off the clock
    return points


def time_to_reach(points, target):
    for p in points:
        if p["objective"] <= target:
            return p
    return None


def versions():
    try:
        commit = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)),
                                 "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
            "numba": numba.__version__, "commit": commit}


def load_data(n):
    if fashion_mnist_available():
        X, _ = load_fashion_mnist(subset="train", n_samples=n, random_state=0)
        X = X.astype(np.float64)
        data = f"Fashion-MNIST train subset n={n}"
    else:
        from sklearn.datasets import load_digits

        X = load_digits().data[:n] / 16.0
        data = "digits (Fashion-MNIST not installed)"
    return X - X.mean(axis=0), data  # both methods see the same centred data


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2,000 rows, 64 units, shorter trajectories")
    parser.add_argument("--n-components", type=int, default=None, help="K (default 128)")
    parser.add_argument("--n-rows", type=int, default=None,
                        help="first rows of the Fashion-MNIST subset (default 10000)")
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layer-budgets", type=int, nargs="+", default=None,
                        help="max_iter of the layer fits (default 1 2 4 ... 64)")
    parser.add_argument("--mbdl-epochs", type=int, nargs="+", default=None,
                        help="epochs at which the MBDL run is scored (default 1 2 4 ... 32)")
    parser.add_argument("--score-tol", type=float, default=1e-8,
                        help="relative duality gap of the scoring solve")
    parser.add_argument("--check-mbdl", action="store_true",
                        help="check the continued MBDL run against fit (always with --quick)")
    parser.add_argument("--json", help="write the figures to this new file")
    args = parser.parse_args(argv)
    refuse_existing(parser, args.json)
    if args.n_rows is None:
        args.n_rows = 2000 if args.quick else 10000
    if args.n_components is None:
        args.n_components = 64 if args.quick else 128
    if args.layer_budgets is None:
        args.layer_budgets = [1, 2, 4, 8, 16, 32] if args.quick else [1, 2, 4, 8, 16, 32, 64]
    if args.mbdl_epochs is None:
        args.mbdl_epochs = [1, 2, 4, 8, 16] if args.quick else [1, 2, 4, 8, 16, 32]
    for name in ("layer_budgets", "mbdl_epochs"):
        values = getattr(args, name)
        if min(values) < 1 or values != sorted(set(values)):
            parser.error(f"--{name.replace('_', '-')} must be increasing positive integers")
    return args


def main(argv=None):
    args = parse_args(argv)
    X, data = load_data(args.n_rows)
    K, alpha, threads = args.n_components, args.alpha, args.threads
    meta = {"data": data, "n_rows": X.shape[0], "n_features": X.shape[1], "n_components": K,
            "alpha": alpha, "threads": threads, "batch_size": BATCH_SIZE, "seed": SEED,
            "score_tol": args.score_tol, "layer_budgets": args.layer_budgets,
            "mbdl_epochs": args.mbdl_epochs,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.platform()}, {os.cpu_count()} cores",
            "load_start": os.getloadavg(), **versions()}
    print(f"# layer fit vs MiniBatchDictionaryLearning: {data}, p={X.shape[1]}, K={K}, "
          f"alpha={alpha}, threads={threads}")
    print(f"# {meta['date']}, {meta['machine']}, load {meta['load_start'][0]:.2f}; "
          + ", ".join(f"{k} {meta[k]}" for k in ("python", "numpy", "scipy", "scikit-learn",
                                                 "numba", "commit")), flush=True)
    if args.quick or args.check_mbdl:
        meta["mbdl_continuation_max_diff"] = check_mbdl_continuation(X, K, alpha, threads)

    def score(D):
        return dictionary_objective(X, D, alpha, threads, args.score_tol)

    with pinned_threads(threads):
        # compile (or load) the kernels outside the timings, at the benchmark's width
        fit_layer(X[:256], K, alpha, 2, threads)
        ours = layer_trajectory(X, K, alpha, args.layer_budgets, threads, score)
        theirs = mbdl_trajectory(X, K, alpha, args.mbdl_epochs, score)
    best = min(p["objective"] for p in ours + theirs)
    target = best * 1.01
    a, b = time_to_reach(ours, target), time_to_reach(theirs, target)
    print(f"\nbest objective {best:.6f}; target (within 1%) {target:.6f}")
    fmt = lambda p: "not reached" if p is None else f"{p['wall']:.2f}s wall / {p['cpu']:.2f}s cpu"  # noqa: E731
    print("| method | time to target | final objective |\n|---|---|---|")
    print(f"| GroupSparseCodingLayer | {fmt(a)} | {ours[-1]['objective']:.6f} |")
    print(f"| MiniBatchDictionaryLearning | {fmt(b)} | {theirs[-1]['objective']:.6f} |")
    speedup = None
    if a is not None:
        # not reached: MBDL's whole run is a lower bound of its time to the target
        ref, bound = (b, "") if b is not None else (theirs[-1], ">= ")
        speedup = {"wall": ref["wall"] / a["wall"], "cpu": ref["cpu"] / a["cpu"],
                   "lower_bound": b is None}
        print(f"\nspeed-up to the target: {bound}{speedup['wall']:.1f}x wall, "
              f"{bound}{speedup['cpu']:.1f}x CPU"
              + ("  (MiniBatchDictionaryLearning did not reach the target: its whole run)"
                 if b is None else ""))
    else:
        print("\nGroupSparseCodingLayer did not reach the target within its budgets")
    meta["load_end"] = os.getloadavg()
    meta["peak_rss_mib"] = round(peak_rss_mib(), 1)
    print(f"# load at the end {meta['load_end'][0]:.2f}, peak RSS {meta['peak_rss_mib']:.0f} "
          f"MiB, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    if args.json:
        dump_json_new(args.json, {"meta": meta, "ours": ours, "mbdl": theirs, "best": best,
                                  "target": target, "speedup": speedup})


if __name__ == "__main__":
    main()
