"""Streaming benchmark: memory and throughput of ``GroupSparseCodingLayer.partial_fit``.

Streams rows of 784 float32 features (as many as the largest of ``--checkpoints``,
1,000,000 by default) through ``partial_fit``, one mini-batch at a time. The rows are
*generated* batch by batch and thrown away after use -- the whole stream is never in
memory -- so the process memory measures the estimator, not the data:

- rows are Fashion-MNIST training images (a fixed pool of 10,000) drawn at random, plus
  Gaussian pixel noise so no two rows repeat (falls back to a synthetic
  planted-structure source when the Debian package ``dataset-fashion-mnist`` is not
  installed);
- at every checkpoint (``--checkpoints``, default 1e4, 1e5, 1e6 rows) it records the peak
  resident set size since the stream started (Linux ``VmHWM``, reset after the warm-up
  batch through ``/proc/self/clear_refs``; the lifetime ``ru_maxrss`` too), the current
  RSS (psutil, when installed), the peak and live memory of Python/NumPy allocations
  (tracemalloc), the size of the layer's state (its arrays and lists, in bytes) and the
  throughput (rows per second of wall and of CPU time) since the previous checkpoint;
- BLAS and Numba threads are pinned (threadpoolctl / ``n_jobs``) to ``--threads``.

A flat peak RSS from 1e4 to 1e6 rows is the claim: memory is O(n_components *
n_features), independent of the number of rows seen.

Run::

    python benchmarks/bench_streaming.py --quick          # 2e4 rows, a smoke check (~20 s)
    python benchmarks/bench_streaming.py                  # 1e6 rows (minutes)
    python benchmarks/bench_streaming.py --json out.json  # raw figures too

The markdown table goes to stdout, progress to stderr.
"""

import argparse
import json
import platform
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_info, threadpool_limits

from sklearn_structlearn import GroupSparseCodingLayer
from sklearn_structlearn.datasets import (
    fashion_mnist_available,
    load_fashion_mnist,
    make_planted_structure,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import peak_rss_mib  # noqa: E402

N_FEATURES = 784


def reset_peak_rss():
    """Reset the kernel's peak-RSS mark (Linux ``clear_refs``); False when not possible.

    ``ru_maxrss`` never goes down, so loading the source images would hide the stream's
    own peak; after this reset, ``VmHWM`` is the peak since the stream started.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def stream_peak_rss_mib():
    """``VmHWM`` (peak RSS since the last reset) in MiB, NaN where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def current_rss_mib():
    try:
        import psutil
    except ImportError:
        return float("nan")
    return psutil.Process().memory_info().rss / 2**20


def state_bytes(layer):
    """Bytes held by the layer's fitted state (arrays, running statistics, histories)."""
    total = 0
    for value in vars(layer).values():
        if isinstance(value, np.ndarray):
            total += value.nbytes
        elif isinstance(value, dict):
            total += sum(v.nbytes for v in value.values() if isinstance(v, np.ndarray))
        elif isinstance(value, list):
            total += 8 * len(value)
    return total


def make_source(seed, noise):
    """A function ``batch(rng, m)`` returning ``m`` fresh float32 rows of 784 features."""
    if fashion_mnist_available():
        # a pool of 10,000 images (31 MiB) is resampled with noise: a small, fixed cost
        base, _ = load_fashion_mnist(subset="train", n_samples=10_000, random_state=seed,
                                     dtype=np.float32)
        name = "Fashion-MNIST train rows + N(0, {:g}^2) noise".format(noise)
    else:
        base = make_planted_structure(
            n_samples=10_000, n_features=N_FEATURES, n_components=128, group_size=4,
            fan_in=49, active_groups=3, noise=0.0, random_state=seed,
        ).X.astype(np.float32)
        name = "synthetic planted structure + N(0, {:g}^2) noise".format(noise)

    def batch(rng, m):
        rows = base[rng.integers(0, base.shape[0], size=m)]
        return rows + np.float32(noise) * rng.standard_normal(rows.shape, dtype=np.float32)

    return batch, name, base.nbytes


def run(args):
    checkpoints = sorted(int(float(c)) for c in args.checkpoints)
    n_rows = max(checkpoints)
    source, source_name, base_bytes = make_source(args.seed, args.noise)
    rng = np.random.default_rng(args.seed)
    layer = GroupSparseCodingLayer(
        n_components=args.n_components, group_size=args.group_size, alpha=args.alpha,
        connectivity_alpha=args.connectivity_alpha, random_state=args.seed,
        n_jobs=args.threads,
    )
    rows_done = 0
    records = []
    with threadpool_limits(limits=args.threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # warm-up batch: JIT compilation / cache loading and "auto" penalties, not timed
        layer.partial_fit(source(rng, args.batch_size))
        rows_done += args.batch_size
        baseline = current_rss_mib()
        hwm_reset = reset_peak_rss()
        # tracemalloc sees every NumPy buffer: its peak is the largest live Python/NumPy
        # memory over the interval, free of allocator and library noise
        tracemalloc.start()
        traced_base = tracemalloc.get_traced_memory()[0]
        wall0, cpu0 = time.perf_counter(), time.process_time()
        last_wall, last_cpu, last_rows = wall0, cpu0, rows_done
        for checkpoint in checkpoints:
            while rows_done < checkpoint:
                m = min(args.batch_size, checkpoint - rows_done)
                layer.partial_fit(source(rng, m))
                rows_done += m
            wall, cpu = time.perf_counter(), time.process_time()
            traced_now, traced_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            rec = {
                "rows_seen": rows_done,
                "batches": layer.n_iter_,
                "peak_rss_mib": peak_rss_mib(),
                "stream_peak_rss_mib": stream_peak_rss_mib() if hwm_reset else float("nan"),
                "traced_mib": (traced_now - traced_base) / 2**20,
                "traced_peak_mib": (traced_peak - traced_base) / 2**20,
                "rss_mib": current_rss_mib(),
                "layer_state_bytes": state_bytes(layer),
                "rows_per_s_wall": (rows_done - last_rows) / max(wall - last_wall, 1e-12),
                "rows_per_s_cpu": (rows_done - last_rows) / max(cpu - last_cpu, 1e-12),
                "surrogate_objective": layer.objective_history_[-1],
            }
            records.append(rec)
            print(f"[bench_streaming] {rows_done:>9d} rows: peak RSS "
                  f"{rec['stream_peak_rss_mib']:.0f} MiB since the stream started, traced "
                  f"peak {rec['traced_peak_mib']:.1f} MiB, "
                  f"{rec['rows_per_s_wall']:.0f} rows/s wall",
                  file=sys.stderr, flush=True)
            last_wall, last_cpu, last_rows = wall, cpu, rows_done
    total_wall = time.perf_counter() - wall0
    total_cpu = time.process_time() - cpu0
    tracemalloc.stop()
    return {
        "source": source_name,
        "source_pool_mib": base_bytes / 2**20,
        "n_features": N_FEATURES,
        "n_components": args.n_components,
        "group_size": args.group_size,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "alpha_": layer.alpha_,
        "connectivity_alpha_": layer.connectivity_alpha_,
        "connectivity_density": float(layer.connectivity_.mean()),
        "rss_after_warmup_mib": baseline,
        "peak_rss_reset": hwm_reset,
        "total_rows_timed": rows_done - args.batch_size,
        "total_wall_s": total_wall,
        "total_cpu_s": total_cpu,
        "checkpoints": records,
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "blas": [(i.get("internal_api"), i.get("version"), i.get("num_threads"))
                     for i in threadpool_info()],
        },
    }


def report(result):
    lines = [
        f"Stream: {result['total_rows_timed'] + result['batch_size']:,} rows x "
        f"{result['n_features']} float32 features, {result['source']} "
        f"(pool of source images in memory: {result['source_pool_mib']:.0f} MiB), "
        f"batches of {result['batch_size']}, {result['threads']} thread(s); layer "
        f"n_components={result['n_components']}, group_size={result['group_size']}, "
        f"alpha_={result['alpha_']:.3g}, connectivity_alpha_={result['connectivity_alpha_']:.3g}"
        f" (final connectivity density {result['connectivity_density']:.1%}).",
        "",
        "| rows seen | batches | peak RSS since stream start (MiB) | RSS now (MiB) "
        "| traced peak in interval (MiB) | traced live (MiB) | layer state (KiB) "
        "| rows/s wall | rows/s CPU |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rec in result["checkpoints"]:
        lines.append(
            f"| {rec['rows_seen']:,} | {rec['batches']:,} | {rec['stream_peak_rss_mib']:.0f} "
            f"| {rec['rss_mib']:.0f} | {rec['traced_peak_mib']:.1f} | {rec['traced_mib']:.2f} "
            f"| {rec['layer_state_bytes'] / 1024:.0f} "
            f"| {rec['rows_per_s_wall']:,.0f} | {rec['rows_per_s_cpu']:,.0f} |"
        )
    lines += [
        "",
        f"RSS after the warm-up batch: {result['rss_after_warmup_mib']:.0f} MiB (process "
        f"lifetime peak, including loading the source: "
        f"{result['checkpoints'][-1]['peak_rss_mib']:.0f} MiB). Traced = tracemalloc "
        "(Python + NumPy allocations made after the warm-up). "
        f"Whole timed stream: {result['total_rows_timed']:,} rows in "
        f"{result['total_wall_s']:.1f} s wall "
        f"({result['total_rows_timed'] / result['total_wall_s']:,.0f} rows/s), "
        f"{result['total_cpu_s']:.1f} s CPU "
        f"({result['total_rows_timed'] / result['total_cpu_s']:,.0f} rows/s). "
        "Throughput per row is per checkpoint interval.",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="checkpoints 2e3, 1e4, 2e4 rows (a smoke run)")
    parser.add_argument("--checkpoints", nargs="+", default=["1e4", "1e5", "1e6"])
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--n-components", type=int, default=128)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--alpha", default="auto")
    parser.add_argument("--connectivity-alpha", default="auto")
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the raw figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.checkpoints = ["2e3", "1e4", "2e4"]
    for name in ("alpha", "connectivity_alpha"):
        value = getattr(args, name)
        if value != "auto":
            setattr(args, name, float(value))
    result = run(args)
    print(report(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
