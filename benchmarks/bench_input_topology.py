"""Recovery of the pixel grid from the statistics of shuffled images (InputTopologyLearner).

For the digits (8x8, 1,797 images) and Fashion-MNIST (28x28; a stratified subset and the
60,000 training images), the pixels are shuffled by fixed random permutations and
:class:`~sklearn_structlearn.topology.InputTopologyLearner` recovers their layout from the
data alone; the true grid (``image_shape``) is used only to score it
(:func:`~sklearn_structlearn.topology.grid_recovery`): the fraction of pixels at their
true site up to the grid's symmetries (``exact``), the same over the informative pixels
(variance >= 1% of the median), and the fraction of true 4-neighbour pairs that are
adjacent in the recovered layout. ``--shrinkage`` sweeps the one parameter of the
similarity.

Run::

    python benchmarks/bench_input_topology.py                       # the default table
    python benchmarks/bench_input_topology.py --shrinkage 0.01 0.03 ledoit-wolf --seeds 1 2
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import format_table, pinned_threads  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["digits", "fashion-20k", "fashion-60k"],
                   choices=["digits", "fashion-20k", "fashion-60k"])
    p.add_argument("--seeds", type=int, nargs="+", default=[-1, 1, 2, 3],
                   help="permutation seeds (-1: the original pixel order)")
    p.add_argument("--shrinkage", nargs="+", default=["0.03"])
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def load(name):
    from sklearn.datasets import load_digits

    from sklearn_structlearn.datasets import load_fashion_mnist

    if name == "digits":
        return load_digits().data, (8, 8)
    n = 20000 if name == "fashion-20k" else None
    return load_fashion_mnist(subset="train", n_samples=n, random_state=0)[0], (28, 28)


def main(argv=None):
    args = parse_args(argv)
    from sklearn_structlearn.datasets import permute_pixels
    from sklearn_structlearn.topology import InputTopologyLearner

    rows = []
    with pinned_threads(args.threads):
        for name in args.datasets:
            X, shape = load(name)
            for shrinkage in args.shrinkage:
                s = shrinkage if shrinkage == "ledoit-wolf" else float(shrinkage)
                for seed in args.seeds:
                    if seed < 0:
                        Xp, perm = X, None
                    else:
                        Xp, perm = permute_pixels(X, random_state=seed)
                    w0, c0 = time.perf_counter(), time.process_time()
                    topo = InputTopologyLearner(shrinkage=s).fit(Xp)
                    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
                    sc = topo.recovery(shape, perm)
                    rows.append({
                        "data": f"{name} ({X.shape[0]})", "shrinkage": str(shrinkage),
                        "pixels": "original" if seed < 0 else f"shuffled #{seed}",
                        "lattice": "x".join(map(str, topo.grid_shape_)),
                        "exact": sc["exact"], "exact_inf": sc["exact_informative"],
                        "n_inf": X.shape[1] - sc["n_uninformative"],
                        "neighbours": sc["neighbours"], "wall": wall, "cpu": cpu,
                    })
                    print(rows[-1], file=sys.stderr, flush=True)

    def pct(v):
        return f"{100 * v:.1f}"

    columns = [("data", "data", None), ("shrinkage", "shrinkage", None),
               ("pixels", "pixels", None), ("lattice", "recovered lattice", None),
               ("exact", "exact % (all)", pct), ("exact_inf", "exact % (informative)", pct),
               ("n_inf", "informative pixels", str), ("neighbours", "4-neighbours kept %", pct),
               ("wall", "wall s", lambda v: f"{v:.1f}"), ("cpu", "CPU s", lambda v: f"{v:.1f}")]
    print(format_table(rows, columns, title="Input topology recovered from the data"))
    return rows


if __name__ == "__main__":
    main()
