"""A wide layer on all 60,000 Fashion-MNIST training images (issue 13): time, memory, objective.

    python benchmarks/bench_wide_layer.py [--n-components 4096] [--group-size 4]
        [--batch-size 8192 --epochs 4 | --max-iter 30] [--alpha auto] [--connectivity-alpha auto]
        [--threads 2] [--json out.json]

The inputs are whitened as ``DeepStructureLearner`` whitens them (ZCA, its default
``zca_epsilon``); then ``GroupSparseCodingLayer`` is fitted as the learner fits its layers
(non-negative codes, the learner's default; ``--signed-codes`` for the layer's default), online (``--batch-size``: passes
over shuffled batches of that many rows, memory bounded by the batch) or full batch (no
``--batch-size``: every iteration codes all rows). Reported: wall and CPU time of the fit,
the process's peak resident memory after the fit, and the layer objective of the learned
dictionary with its *optimal* codes (solved to the duality gap, 10,000 rows at a time), so
that online and full-batch dictionaries are judged alike. Threads are pinned (BLAS and
Numba); the kernels are compiled (or loaded from the cache) before the clock starts.
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import dump_json_new, peak_rss_mib, pinned_threads, refuse_existing  # noqa: E402

from sklearn_structlearn import GroupSparseCodingLayer  # noqa: E402
from sklearn_structlearn.datasets import load_fashion_mnist  # noqa: E402
from sklearn_structlearn.objective import layer_objective  # noqa: E402
from sklearn_structlearn.preprocessing import Preprocessor  # noqa: E402


def penalty(text):
    return text if text == "auto" else float(text)


def exact_objective(layer, Z, block=10_000):
    """Mean layer objective of ``layer.components_`` with optimal codes, block by block."""
    total = 0.0
    for lo in range(0, Z.shape[0], block):
        rows = Z[lo:lo + block]
        codes = layer.encode(rows)
        total += rows.shape[0] * layer_objective(
            rows, layer.components_, codes, layer.alpha_, layer.connectivity_alpha_,
            layer.group_size)
    return total / Z.shape[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-components", type=int, default=4096)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="online fit over batches of this many rows (default: full batch)")
    parser.add_argument("--epochs", type=int, default=4, help="passes of the online fit")
    parser.add_argument("--max-iter", type=int, default=30, help="iterations of a full-batch fit")
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--alpha", type=penalty, default="auto")
    parser.add_argument("--connectivity-alpha", type=penalty, default="auto")
    parser.add_argument("--signed-codes", action="store_true",
                        help="codes of any sign (default: non-negative, as DeepStructureLearner)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-rows", type=int, default=60_000, help="first rows of the training set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    refuse_existing(parser, args.json)  # checked before an hour of work, not after

    X = load_fashion_mnist(subset="train")[0][:args.n_rows]
    Z = Preprocessor("zca").fit_transform(X).astype(np.float32)
    online = args.batch_size is not None
    layer = GroupSparseCodingLayer(
        args.n_components, group_size=args.group_size, alpha=args.alpha,
        connectivity_alpha=args.connectivity_alpha, positive_code=not args.signed_codes,
        batch_size=args.batch_size,
        max_iter=args.epochs if online else args.max_iter, tol=args.tol,
        random_state=args.seed, n_jobs=args.threads, verbose=1)
    with pinned_threads(args.threads):
        # compile (or load) the kernels outside the clock: reported apart by bench_compile.py
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one iteration does not converge: it need not
            GroupSparseCodingLayer(8, group_size=args.group_size, max_iter=1,
                                   random_state=0).fit(Z[:64])
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        layer.fit(Z)
        fit_wall, fit_cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
        rss = peak_rss_mib() / 1024
        objective = exact_objective(layer, Z)
    result = {
        "mode": f"online, batches of {args.batch_size}" if online else "full batch",
        "n_rows": Z.shape[0], "n_components": layer.n_components_,
        "group_size": args.group_size, "positive_code": not args.signed_codes,
        "threads": args.threads,
        "passes": args.epochs if online else layer.n_iter_,
        "fit_wall_s": round(fit_wall, 1), "fit_cpu_s": round(fit_cpu, 1),
        "peak_rss_gib_after_fit": round(rss, 2), "alpha": layer.alpha_,
        "connectivity_alpha": layer.connectivity_alpha_,
        "connection_density": float((layer.components_ != 0).mean()),
        "exact_objective": round(objective, 4),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(json.dumps(result, indent=1))
    if args.json:
        dump_json_new(args.json, result)


if __name__ == "__main__":
    main()
