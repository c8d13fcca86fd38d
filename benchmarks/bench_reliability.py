"""What the reliability fixes of issue 16 cost: the threading layer and fit transactions.

1. **Threading layer.** The package asks Numba for its fork-safe layer (``workqueue``
   without TBB) instead of GNU OpenMP. Each layer is measured in a fresh interpreter
   (``NUMBA_THREADING_LAYER`` set: the layer is fixed at the first launch of a process):
   a layer fitted on the digits, then ``transform`` of the digits, 2 threads.
2. **Fit transactions.** Every ``partial_fit`` works on a copy of the fitted state; the
   copy is timed against the ``partial_fit`` step it protects, for a few layer sizes.

Run: ``python benchmarks/bench_reliability.py [--quick]``; a markdown report on stdout.
Times are medians; CPU time beside wall time (the machine may be shared).
"""

import argparse
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np

_CHILD = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
import numba
import numpy as np
from sklearn.datasets import load_digits
from sklearn_structlearn import GroupSparseCodingLayer
sys.path.insert(0, sys.argv[2])
from _timing import measure, pinned_threads

X = load_digits().data / 16.0
repeats = int(sys.argv[1])
with pinned_threads(2):
    layer = GroupSparseCodingLayer(128, group_size=4, alpha=0.3, max_iter=5, random_state=0,
                                   n_jobs=2)
    layer.fit(X)  # compiles / loads the kernels
    fit, _ = measure(lambda: layer.fit(X), repeats=repeats)
    transform, _ = measure(lambda: layer.transform(X), repeats=repeats)
print(json.dumps({"layer": numba.threading_layer(), "fit": [fit.wall, fit.cpu],
                  "transform": [transform.wall, transform.cpu]}))
"""


def threading_layers(repeats):
    here = os.path.dirname(os.path.abspath(__file__))
    rows = []
    for layer in ("omp", "workqueue"):
        env = dict(os.environ, NUMBA_THREADING_LAYER=layer)
        out = subprocess.run([sys.executable, "-c", _CHILD, str(repeats), here], env=env,
                             capture_output=True, text=True)
        if out.returncode:
            rows.append((layer, None))
            print(f"{layer}: failed: {out.stderr[-500:]}", file=sys.stderr)
            continue
        rows.append((layer, json.loads(out.stdout.strip().splitlines()[-1])))
    return rows


def transaction_cost(sizes, repeats):
    from sklearn_structlearn import GroupSparseCodingLayer
    from sklearn_structlearn._transaction import _copy_state

    from _timing import measure, pinned_threads

    rng = np.random.default_rng(0)
    rows = []
    with pinned_threads(2), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n_components, n_features, batch in sizes:
            X = rng.standard_normal((batch, n_features))
            layer = GroupSparseCodingLayer(n_components, group_size=4, alpha=0.5,
                                           random_state=0, n_jobs=2)
            for _ in range(3):
                layer.partial_fit(X)
            params = layer.get_params(deep=False)
            state = {k: v for k, v in vars(layer).items() if k not in params}
            copy, _ = measure(lambda: _copy_state(state), repeats=repeats)
            step, _ = measure(lambda: layer.partial_fit(X), repeats=repeats)
            rows.append((n_components, n_features, batch, copy, step))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller layers")
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    repeats = 3 if args.quick else 7
    print(f"# Reliability costs ({time.strftime('%Y-%m-%d %H:%M')}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})\n")
    print("## Numba threading layer (digits, 128 units in groups of 4, 2 threads)\n")
    print("| layer | fit wall | fit CPU | transform wall | transform CPU |")
    print("|---|---|---|---|---|")
    for layer, r in threading_layers(repeats):
        if r is None:
            print(f"| {layer} | unavailable | | | |")
            continue
        print(f"| {r['layer']} | {r['fit'][0]:.3f} s | {r['fit'][1]:.3f} s | "
              f"{r['transform'][0]:.3f} s | {r['transform'][1]:.3f} s |")
    sizes = [(64, 64, 256), (512, 784, 256)] if args.quick else [
        (64, 64, 256), (256, 784, 256), (1024, 784, 256)]
    print("\n## Fit transaction: copy of the fitted state vs one partial_fit batch\n")
    print("| units x features, batch | state copy | partial_fit step | copy / step |")
    print("|---|---|---|---|")
    for n_components, n_features, batch, copy, step in transaction_cost(sizes, repeats):
        print(f"| {n_components} x {n_features}, {batch} | {copy.wall * 1e3:.2f} ms | "
              f"{step.wall * 1e3:.1f} ms | {copy.wall / step.wall:.1%} |")


if __name__ == "__main__":
    main()
