"""What ONNX export costs, exact mode against feedforward mode.

``to_torch(mode="exact")`` unrolls ``n_iter`` proximal iterations per layer, so an
exported graph (``torch.onnx.export``, ``torch.export``) grows linearly with ``n_iter``;
``mode="feedforward"`` is one masked linear map, a threshold and a pooling per layer.
This script fits a small :class:`~sklearn_structlearn.DeepStructureLearner` on the digits
(one layer of ``--n-components`` units) and, for the feedforward module and the exact one
at several ``n_iter``, reports the ONNX export time (wall and CPU), the graph's node
count and file size, the time of one onnxruntime inference on 1,000 digits, and how far
the exported outputs are from ``transform`` (max relative error, float32).

Run::

    python benchmarks/bench_onnx_export.py                    # n_iter 200 (default), 50, 20
    python benchmarks/bench_onnx_export.py --n-iter 200 100 --n-components 128

Needs torch, onnx, onnxscript and onnxruntime.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
import warnings

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-iter", type=int, nargs="+", default=[200, 50, 20])
    p.add_argument("--n-components", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import onnx
    import onnxruntime as ort
    import torch

    from sklearn_structlearn import DeepStructureLearner
    from sklearn_structlearn.datasets import load_digits_images
    from sklearn_structlearn.export import DEFAULT_N_ITER

    torch.set_num_threads(args.threads)
    X, _ = load_digits_images()
    X = X.astype(np.float32)
    # lasso codes: the exact module is then the unrolled iterations this benchmark sizes
    # (with the default feed-forward codes it is the feed-forward module itself)
    learner = DeepStructureLearner(max_depth=1, n_components=args.n_components,
                                   transform_algorithm="lasso", random_state=0,
                                   n_jobs=args.threads).fit(X[:1000])
    X_test = X[1000:2000]
    reference = learner.transform(X_test.astype(np.float64))
    variants = [("feedforward", None)] + [("exact", n) for n in args.n_iter]
    rows = []
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mode, n_iter in variants:
            kwargs = {} if n_iter is None else {"n_iter": n_iter}
            net = learner.to_torch(mode=mode, **kwargs).eval()
            path = os.path.join(folder, f"{mode}-{n_iter}.onnx")
            w0, c0 = time.perf_counter(), time.process_time()
            torch.onnx.export(net, (torch.from_numpy(X_test[:3]),), path, input_names=["x"],
                              output_names=["y"],
                              dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
                              verbose=False)
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            n_nodes = len(onnx.load(path).graph.node)
            session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            t0 = time.perf_counter()
            (out,) = session.run(None, {"x": X_test})
            infer = time.perf_counter() - t0
            error = (np.abs(out - reference).max() / np.abs(reference).max()
                     if mode == "exact" else float("nan"))
            rows.append((mode, n_iter, wall, cpu, n_nodes, os.path.getsize(path), infer, error))
            print(f"{mode} n_iter={n_iter}: export {wall:.1f} s", file=sys.stderr, flush=True)
    print(f"# ONNX export of a 1-layer DeepStructureLearner ({args.n_components} units, "
          f"64 inputs), {datetime.date.today()}, {platform.node()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}, torch {torch.__version__}, onnx {onnx.__version__}; "
          f"DEFAULT_N_ITER={DEFAULT_N_ITER}\n")
    print("| mode | n_iter | export wall (s) | export CPU (s) | ONNX nodes | file (MB) | "
          "onnxruntime, 1000 rows (s) | max rel. error vs transform |")
    print("|---|---|---|---|---|---|---|---|")
    for mode, n_iter, wall, cpu, n_nodes, size, infer, error in rows:
        err = "- (not the same function)" if mode == "feedforward" else f"{error:.1e}"
        print(f"| {mode} | {n_iter or '-'} | {wall:.1f} | {cpu:.1f} | {n_nodes:,} | "
              f"{size / 1e6:.2f} | {infer:.3f} | {err} |")


if __name__ == "__main__":
    main()
