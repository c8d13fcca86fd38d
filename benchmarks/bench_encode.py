"""Sparse-coding benchmark: ``group_sparse_encode`` against its peers.

Every solver solves the same problem, per row ``x`` of ``X``::

    min_a 1/2 ||x - D^T a||^2 + alpha * sum_g ||a_g||_2        (contiguous groups)

on Fashion-MNIST pixels with a quickly learned dictionary, and on a synthetic planted
problem. Each solver's tolerance is tuned (loosest value of a ladder that reaches a mean
relative suboptimality <= --target on a calibration subsample, against a reference
solution certified to a relative duality gap of 1e-12), then timed at 1 and 2 threads.

Run ``python benchmarks/bench_encode.py --quick`` for a smoke run (~2-3 minutes) and
``python benchmarks/bench_encode.py --json results.json`` for the full run. See
``benchmarks/README.md`` for what every column means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import (  # noqa: E402
    alpha_max,
    discover_peers,
    fista,
    primal_objective,
    reference_solve,
    suboptimality,
)
from _timing import fmt_seconds, format_table, measure, pinned_threads  # noqa: E402

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
BASELINE = "structlearn"

# name, n_samples, n_components (Fashion-MNIST: n_features = 784)
FULL_FASHION = [("fashion-2k-K256", 2000, 256), ("fashion-10k-K512", 10000, 512)]
QUICK_FASHION = [("fashion-300-K64", 300, 64)]
# name, n_samples, n_features, n_components
FULL_SYNTH = [("planted-2k-p256-K512", 2000, 256, 512)]
QUICK_SYNTH = [("planted-300-p64-K64", 300, 64, 64)]


@dataclass
class Problem:
    name: str
    family: str  # problems of one family share the calibrated tolerances
    X: np.ndarray
    D: np.ndarray
    group_size: int
    alpha: float = 0.0
    nnz: float = 0.0
    meta: dict = field(default_factory=dict)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


def _read_idx_images(path):
    """Tiny private idx3 reader (fallback when sklearn_structlearn.datasets is absent)."""
    import gzip

    with gzip.open(path, "rb") as f:
        raw = f.read()
    n, rows, cols = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows * cols)


def load_fashion(n_samples, random_state=0):
    """``n_samples`` Fashion-MNIST train images, pixels in [0, 1], float64."""
    try:
        from sklearn_structlearn.datasets import load_fashion_mnist
    except ImportError:
        load_fashion_mnist = None
    if load_fashion_mnist is not None:
        X, _ = load_fashion_mnist(subset="train", n_samples=n_samples,
                                  random_state=random_state, dtype=np.float64)
        return np.ascontiguousarray(X)
    images = _read_idx_images(os.path.join(FASHION_DIR, "train-images-idx3-ubyte.gz"))
    rng = np.random.default_rng(random_state)
    idx = np.sort(rng.choice(images.shape[0], n_samples, replace=False))
    return images[idx].astype(np.float64) / 255.0


def learn_dictionary(X, n_components, random_state=0):
    """K unit-norm atoms: one pass of MiniBatchDictionaryLearning over ``X``.

    Deliberately quick (~16 mini-batches of 256 images): the atoms are smooth,
    mostly non-negative "prototype" images, so the dictionary is very coherent
    (largest Gram eigenvalue ~ K / 2), which is what a first layer on raw pixels sees.
    """
    from sklearn.decomposition import MiniBatchDictionaryLearning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MiniBatchDictionaryLearning(n_components=n_components, alpha=1.0, batch_size=256,
                                            max_iter=1, fit_algorithm="cd",
                                            random_state=random_state).fit(X)
    D = model.components_
    return np.ascontiguousarray(D / np.linalg.norm(D, axis=1, keepdims=True))


def planted_problem(n_samples, n_features, n_components, group_size, random_state=0):
    """Synthetic data from a known sparse dictionary with planted active groups."""
    n_groups = n_components // group_size
    active = max(1, round(0.08 * n_groups))
    try:
        from sklearn_structlearn.datasets import make_planted_structure
    except ImportError:
        make_planted_structure = None
    if make_planted_structure is not None:
        data = make_planted_structure(n_samples=n_samples, n_features=n_features,
                                      n_components=n_components, group_size=group_size,
                                      fan_in=max(4, n_features // 8), active_groups=active,
                                      noise=0.05, random_state=random_state)
        X, D = data.X, data.dictionary
    else:  # private fallback: dense Gaussian atoms, Gaussian codes on planted groups
        rng = np.random.default_rng(random_state)
        D = rng.standard_normal((n_components, n_features))
        D /= np.linalg.norm(D, axis=1, keepdims=True)
        mask = np.zeros((n_samples, n_groups), bool)
        for i in range(n_samples):
            mask[i, rng.choice(n_groups, active, replace=False)] = True
        A = rng.standard_normal((n_samples, n_components)) * np.repeat(mask, group_size, axis=1)
        X = A @ D + 0.05 * rng.standard_normal((n_samples, n_features))
    return (np.ascontiguousarray(X, dtype=np.float64),
            np.ascontiguousarray(D, dtype=np.float64), active)


def choose_alpha(X, D, group_size, target_nnz, n_rows=64, max_steps=16, tol_nnz=0.005):
    """alpha such that the codes of ``X[:n_rows]`` have a fraction ``target_nnz`` of
    non-zero coefficients.

    Safeguarded regula falsi on (log alpha, nnz), which is monotone in practice, with
    warm-started FISTA stopped at a relative duality gap of 1e-3: the support is
    already exact at that accuracy, and this runs in seconds instead of minutes.
    """
    Xs = X[:n_rows]
    hi = float(alpha_max(Xs, D, group_size).max())
    lo = hi * 1e-4
    f_lo, f_hi = 1.0 - target_nnz, -target_nnz  # nnz - target at lo (~dense) and hi (zero)
    last_A, best = None, None
    for step in range(max_steps):
        if step == 0:  # start on the sparse side: FISTA is fast there
            log_alpha = np.log(lo) + 0.6 * (np.log(hi) - np.log(lo))
        else:  # interpolate, but stay inside the middle 80% of the bracket
            w = np.clip(f_lo / (f_lo - f_hi), 0.1, 0.9)
            log_alpha = np.log(lo) + w * (np.log(hi) - np.log(lo))
        alpha = float(np.exp(log_alpha))
        A = fista(Xs, D, alpha, group_size, tol=1e-3, max_iter=20_000, init=last_A)
        last_A = A
        nnz = float(np.mean(A != 0))
        if best is None or abs(nnz - target_nnz) < abs(best[1] - target_nnz):
            best = (alpha, nnz)
        if abs(nnz - target_nnz) <= tol_nnz:
            break
        if nnz > target_nnz:
            lo, f_lo = alpha, nnz - target_nnz
        else:
            hi, f_hi = alpha, nnz - target_nnz
    return best


def build_problems(args):
    problems = []
    fashion = QUICK_FASHION if args.quick else FULL_FASHION
    synth = QUICK_SYNTH if args.quick else FULL_SYNTH
    if "fashion" in args.problems:
        n_max = max(n for _, n, _ in fashion)
        t0 = time.perf_counter()
        X_all = load_fashion(n_max + 4096, random_state=0)
        X_dict, X_all = X_all[:4096], X_all[4096:]
        log(f"[data] Fashion-MNIST {X_all.shape} loaded in {time.perf_counter() - t0:.1f}s")
        for name, n, k in fashion:
            t0 = time.perf_counter()
            D = learn_dictionary(X_dict, k)
            log(f"[data] {name}: dictionary K={k} learned in {time.perf_counter() - t0:.1f}s")
            for g in args.group_sizes:
                problems.append(Problem(f"{name}-g{g}", "fashion", X_all[:n], D, g,
                                        meta={"n_samples": n, "n_features": 784,
                                              "n_components": k, "data": "fashion-mnist"}))
    if "planted" in args.problems:
        for name, n, p, k in synth:
            for g in args.group_sizes:
                X, D, active = planted_problem(n, p, k, g)
                problems.append(Problem(f"{name}-g{g}", "planted", X, D, g,
                                        meta={"n_samples": n, "n_features": p,
                                              "n_components": k, "data": "planted",
                                              "planted_active_groups": active}))
    for pb in problems:
        t0 = time.perf_counter()
        pb.alpha, pb.nnz = choose_alpha(pb.X, pb.D, pb.group_size, args.target_nnz)
        eig = float(np.linalg.eigvalsh(pb.D @ pb.D.T)[-1])
        pb.meta.update(alpha=pb.alpha, nnz_bisection=pb.nnz, gram_eigmax=eig,
                       group_size=pb.group_size)
        log(f"[alpha] {pb.name}: alpha={pb.alpha:.4g} (nnz {pb.nnz:.3f}, "
            f"{time.perf_counter() - t0:.1f}s)")
    return problems


# ---------------------------------------------------------------------------------------
# Calibration and timing of one peer on one problem
# ---------------------------------------------------------------------------------------


def calibrate(peer, pb, ref_obj, args, cal_cache):
    """Loosest tol of the peer's ladder whose mean relative suboptimality on the
    calibration rows is <= args.target. Returns (tol, record)."""
    n_cal = min(args.n_cal, ref_obj.shape[0])
    key = (peer.name, pb.family, pb.group_size)
    if not peer.tols:
        return None, {"tol": None, "reached": True, "ladder": []}
    if key in cal_cache:
        # Same data family and group size: the tol tuned on the first (smaller) setting
        # is reused, and the suboptimality of the timed run is measured again.
        record = dict(cal_cache[key], reused_from=cal_cache[key]["problem"])
        return record["tol"], record
    ladder = list(peer.tols)
    if args.start_tol is not None:
        ladder = [t for t in ladder if t <= args.start_tol] or ladder[-1:]
    # Probe a couple of rows at the loosest tol to size the calibration subsample of
    # slow peers (group_lasso needs seconds per row).
    t0 = time.perf_counter()
    peer.solve(pb.X[:2], pb.D, pb.alpha, pb.group_size, ladder[0], 1)
    per_row = (time.perf_counter() - t0) / 2
    n_rows = int(np.clip(args.cal_budget / 6 / max(per_row, 1e-9), 3, n_cal))
    steps, spent, tol, reached = [], 0.0, ladder[0], False
    last = per_row * n_rows
    for tol in ladder:
        if steps and spent + 3 * last > args.cal_budget:
            break  # the next, tighter tol would blow the calibration budget
        t0 = time.perf_counter()
        with pinned_threads(1):
            A = peer.solve(pb.X[:n_rows], pb.D, pb.alpha, pb.group_size, tol, 1)
        last = time.perf_counter() - t0
        spent += last
        sub = suboptimality(pb.X[:n_rows], pb.D, A, pb.alpha, pb.group_size, ref_obj[:n_rows])
        steps.append({"tol": tol, "seconds": last, "rows": n_rows,
                      "subopt_mean": float(sub.mean()), "subopt_max": float(sub.max())})
        if sub.mean() <= args.target:
            reached = True
            break
    record = {"tol": tol, "reached": reached, "rows": n_rows, "ladder": steps,
              "problem": pb.name, "per_row_seconds": steps[-1]["seconds"] / n_rows}
    cal_cache[key] = record
    return tol, record


def time_peer(peer, pb, tol, per_row_seconds, ref_obj, args):
    """Median wall/CPU time at each thread count, extrapolating slow peers."""
    n = pb.X.shape[0]
    threads = args.threads
    if peer.slow and not args.slow_everywhere:
        threads = args.threads[:1]
    projected = per_row_seconds * n
    if projected > args.max_peer_seconds:
        # Too slow to run on everything: time the first m rows and scale by n / m.
        # Rows are independent, so the cost is linear in n for every peer here.
        m = int(np.clip(args.extrapolate_seconds / max(per_row_seconds, 1e-9),
                        2 if peer.slow else 3, n))
        if not (peer.per_row or peer.slow):
            # Batched solvers (one call for all rows) run less efficiently on few rows:
            # keep enough rows that the extrapolation does not overstate their cost.
            m = max(m, min(n, 500))
    else:
        m = n
    Xrun = pb.X[:m]
    scale = n / m
    out = {"rows_timed": m, "projected_seconds_1thread": projected}
    codes = None
    for n_threads in threads:
        with pinned_threads(n_threads):
            # Warm-up: JIT, imports, and for row-parallel peers the joblib workers
            # (several chunks so that every worker compiles its numba code).
            warm_rows = min(m, 4 * n_threads)
            peer.solve(Xrun[:warm_rows], pb.D, pb.alpha, pb.group_size, tol, n_threads)
            timing, codes_t = measure(
                lambda: peer.solve(Xrun, pb.D, pb.alpha, pb.group_size, tol, n_threads),
                repeats=args.repeats, budget=args.time_budget, min_repeats=1, scale=scale,
                extrapolated_from=m if m < n else None)
        if codes is None:
            codes = codes_t
        out[f"t{n_threads}"] = timing.as_dict()
    n_sub = min(ref_obj.shape[0], codes.shape[0])
    if peer.name != "floor":
        sub = suboptimality(pb.X[:n_sub], pb.D, codes[:n_sub], pb.alpha, pb.group_size,
                            ref_obj[:n_sub])
        out.update(subopt_mean=float(sub.mean()), subopt_max=float(sub.max()),
                   subopt_rows=n_sub, nnz=float(np.mean(codes[:n_sub] != 0)))
    return out


# ---------------------------------------------------------------------------------------
# JIT compile time of our first call, in fresh interpreters
# ---------------------------------------------------------------------------------------

_JIT_SNIPPET = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from sklearn_structlearn import group_sparse_encode
t1 = time.perf_counter()
rng = np.random.default_rng(0)
D = rng.standard_normal((64, 100)); D /= np.linalg.norm(D, axis=1, keepdims=True)
X = rng.random((200, 100))
res = {"import_s": t1 - t0}
for g in (1, 4):
    for k in ("first", "second"):
        t = time.perf_counter()
        group_sparse_encode(X, D, alpha=0.5, group_size=g, tol=1e-6, n_jobs=int(sys.argv[1]))
        res[f"g{g}_{k}_call_s"] = time.perf_counter() - t
print(json.dumps(res))
"""


def measure_jit(n_threads=1):
    """First-call cost of group_sparse_encode in a fresh process, cold then warm cache."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache_dir:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
        for label in ("cold_cache", "warm_cache"):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", _JIT_SNIPPET, str(n_threads)], env=env,
                                  capture_output=True, text=True, timeout=900)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                results[label] = {"error": proc.stderr.strip().splitlines()[-1:]}
                continue
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            res["process_wall_s"] = wall
            res["compile_s"] = sum(res[f"g{g}_first_call_s"] - res[f"g{g}_second_call_s"]
                                   for g in (1, 4))
            results[label] = res
    return results


# ---------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------


def _sci(x):
    return f"{x:.1e}"


def _rate(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _tol(x):
    return "exact" if x is None else f"{x:.0e}"


def problem_table(pb, rows, threads):
    base = next((r for r in rows if r["peer"] == BASELINE), None)
    floor = next((r for r in rows if r["peer"] == "floor"), None)
    flat = []
    for r in rows:
        extrapolated = r.get("rows_timed", pb.X.shape[0]) < pb.X.shape[0]
        d = {"peer": r["peer"] + ("*" if extrapolated else ""),
             "tol": r.get("tol"), "subopt_mean": r.get("subopt_mean"),
             "subopt_max": r.get("subopt_max"),
             "note": r.get("note", "")}
        for t in threads:
            tm = r.get(f"t{t}")
            if tm is None:
                continue
            d[f"wall{t}"] = tm["wall"]
            d[f"rate{t}"] = pb.X.shape[0] / tm["wall"]
            if base is not None and base.get(f"t{t}"):
                d[f"vs_ours{t}"] = tm["wall"] / base[f"t{t}"]["wall"]
            if floor is not None and floor.get(f"t{t}"):
                d[f"vs_floor{t}"] = tm["wall"] / floor[f"t{t}"]["wall"]
        flat.append(d)
    cols = [("peer", "solver", None), ("tol", "tol", _tol)]
    for t in threads:
        cols += [(f"wall{t}", f"{t} thr", fmt_seconds), (f"rate{t}", "samples/s", _rate),
                 (f"vs_ours{t}", "/ ours", lambda v: f"{v:.2f}x"),
                 (f"vs_floor{t}", "/ floor", lambda v: f"{v:.0f}x")]
    cols += [("subopt_mean", "subopt mean", _sci), ("subopt_max", "subopt max", _sci),
             ("note", "note", None)]
    m = pb.meta
    title = (f"{pb.name}: n={m['n_samples']}, p={m['n_features']}, K={m['n_components']}, "
             f"group_size={pb.group_size}, alpha={pb.alpha:.4g}, nnz={pb.nnz:.3f}")
    return format_table(flat, cols, title=title)


def summary_table(results, threads):
    """Rows = problems, columns = solvers' wall times, ratio vs ours (baseline column)."""
    names = []
    for res in results:
        for r in res["peers"]:
            if r["peer"] not in names and r.get(f"t{threads}"):
                names.append(r["peer"])
    rows = []
    for res in results:
        row = {"problem": res["problem"]}
        for r in res["peers"]:
            if r.get(f"t{threads}"):
                row[r["peer"]] = r[f"t{threads}"]["wall"]
        rows.append(row)
    cols = [("problem", "problem", None)] + [(n, n, fmt_seconds) for n in names]
    baseline = BASELINE if BASELINE in names else None
    return format_table(rows, cols, baseline=baseline,
                        ratio_columns=[n for n in names if n != BASELINE],
                        ratios_only=baseline is not None,
                        title=f"{threads} thread(s): our wall time, and each solver's time "
                              f"divided by ours (> 1: slower than ours)")


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small problems (smoke run)")
    p.add_argument("--json", metavar="PATH", help="save raw figures as JSON")
    p.add_argument("--peers", nargs="*", help="only these solvers (default: all available)")
    p.add_argument("--skip", nargs="*", default=[], help="leave these solvers out")
    p.add_argument("--problems", nargs="*", default=["fashion", "planted"],
                   choices=["fashion", "planted"])
    p.add_argument("--group-sizes", nargs="*", type=int, default=[1, 4])
    p.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    p.add_argument("--target", type=float, default=1e-6,
                   help="mean relative suboptimality each solver's tol is tuned to reach")
    p.add_argument("--target-nnz", type=float, default=0.11,
                   help="fraction of non-zero codes alpha is chosen for")
    p.add_argument("--n-ref", type=int, default=None,
                   help="rows solved by the reference solver (suboptimality is measured there)")
    p.add_argument("--n-cal", type=int, default=None, help="rows used to tune tolerances")
    p.add_argument("--cal-budget", type=float, default=None,
                   help="seconds of tolerance tuning per solver and problem")
    p.add_argument("--start-tol", type=float, default=None,
                   help="skip ladder values looser than this")
    p.add_argument("--max-peer-seconds", type=float, default=None,
                   help="solvers projected slower than this are timed on a subsample "
                        "and extrapolated linearly (marked *); default 45 (quick: 10)")
    p.add_argument("--extrapolate-seconds", type=float, default=None,
                   help="target duration of one extrapolated timing run")
    p.add_argument("--repeats", type=int, default=3, help="max timed repeats (median kept)")
    p.add_argument("--time-budget", type=float, default=None,
                   help="stop repeating a configuration after this many seconds")
    p.add_argument("--no-jit", action="store_true", help="skip the JIT compile-time test")
    p.add_argument("--slow-everywhere", action="store_true",
                   help="run slow peers (group_lasso: seconds per row) on every problem and "
                        "thread count, not only on the first Fashion-MNIST setting at 1 thread")
    args = p.parse_args(argv)
    quick = args.quick
    defaults = {"n_ref": 60 if quick else 128, "n_cal": 40 if quick else 100,
                "cal_budget": 10.0 if quick else 20.0,
                "max_peer_seconds": 10.0 if quick else 45.0,
                "extrapolate_seconds": 2.0 if quick else 4.0,
                "time_budget": 3.0 if quick else 8.0}
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    return args


def main(argv=None):
    args = parse_args(argv)
    t_start = time.perf_counter()
    peers = discover_peers()
    env = {"python": platform.python_version(), "machine": platform.machine(),
           "cpus": os.cpu_count(), "argv": sys.argv[1:],
           "versions": {p.name: p.version for p in peers if p.available},
           "unavailable": {p.name: p.error for p in peers if not p.available}}
    try:
        from threadpoolctl import threadpool_info
        env["threadpools"] = [{k: i.get(k) for k in ("internal_api", "version", "num_threads")}
                              for i in threadpool_info()]
    except Exception:  # noqa: BLE001
        pass
    for p in peers:
        log(f"[peer] {p.name:12s} " + (f"v{p.version}" if p.available else f"SKIP ({p.error})"))
    selected = [p for p in peers if p.available and (not args.peers or p.name in args.peers)
                and p.name not in args.skip]

    problems = build_problems(args)
    results, cal_cache = [], {}
    for pb in problems:
        t0 = time.perf_counter()
        n_ref = min(args.n_ref, pb.X.shape[0])
        A_ref, rel_gap = reference_solve(pb.X[:n_ref], pb.D, pb.alpha, pb.group_size)
        ref_obj = primal_objective(pb.X[:n_ref], pb.D, A_ref, pb.alpha, pb.group_size)
        log(f"[ref] {pb.name}: {n_ref} rows to max rel gap {rel_gap.max():.1e} "
            f"in {time.perf_counter() - t0:.1f}s, nnz {np.mean(A_ref != 0):.3f}")
        rows = []
        first_setting = pb.family == problems[0].family and pb.meta["n_samples"] == \
            problems[0].meta["n_samples"]
        for peer in selected:
            if not peer.supports(pb.group_size):
                continue
            if peer.slow and not (first_setting or args.slow_everywhere):
                rows.append({"peer": peer.name, "skipped": True,
                             "note": "skipped: slow peer, run on the first setting only "
                                     "(--slow-everywhere to include)"})
                continue
            t0 = time.perf_counter()
            try:
                # Untimed first call: imports, numba compilation (skglm, ours).
                peer.solve(pb.X[:2], pb.D, pb.alpha, pb.group_size,
                           peer.tols[0] if peer.tols else None, 1)
                tol, cal = calibrate(peer, pb, ref_obj, args, cal_cache)
                per_row = cal.get("per_row_seconds")
                if per_row is None or "reused_from" in cal:
                    # Batched solvers amortise over rows: probe them on more rows.
                    n_probe = min(n_ref, 8 if peer.per_row or peer.slow else 128)
                    t1 = time.perf_counter()
                    with pinned_threads(1):
                        peer.solve(pb.X[:n_probe], pb.D, pb.alpha, pb.group_size, tol, 1)
                    per_row = (time.perf_counter() - t1) / n_probe
                if cal["reached"]:
                    note = peer.note
                elif tol == peer.tols[-1]:
                    note = f"target not reached even at tol={_tol(tol)} on calibration rows"
                else:
                    note = (f"target not reached on calibration rows within the tuning "
                            f"budget; timed at tol={_tol(tol)}")
                if "reused_from" in cal:
                    note = (note + "; " if note else "") + f"tol tuned on {cal['reused_from']}"
                if peer.slow and not args.slow_everywhere:
                    note += "; timed at 1 thread only"
                row = {"peer": peer.name, "tol": tol, "calibration": cal, "note": note}
                row.update(time_peer(peer, pb, tol, per_row, ref_obj, args))
            except Exception as exc:  # noqa: BLE001 -- one broken peer must not stop the run
                row = {"peer": peer.name, "error": f"{type(exc).__name__}: {exc}",
                       "note": f"FAILED: {type(exc).__name__}: {exc}"}
            log(f"[run] {pb.name} {peer.name}: {time.perf_counter() - t0:.1f}s "
                + ", ".join(f"t{t}={fmt_seconds(row[f't{t}']['wall'])}"
                            for t in args.threads if f"t{t}" in row)
                + (f" subopt {row['subopt_mean']:.1e}" if "subopt_mean" in row else "")
                + (f" tol={_tol(row.get('tol'))}" if "tol" in row else "")
                + (f" ERROR {row['error']}" if "error" in row else ""))
            rows.append(row)
        results.append({"problem": pb.name, "meta": pb.meta, "n_ref": n_ref,
                        "ref_max_rel_gap": float(rel_gap.max()), "peers": rows,
                        "alpha": pb.alpha, "group_size": pb.group_size})

    jit = None
    if not args.no_jit and any(p.name == BASELINE for p in selected):
        log("[jit] measuring first-call cost in fresh processes ...")
        jit = measure_jit(1)

    # ---- report (stdout) ----
    print("# Sparse-coding benchmark: group_sparse_encode vs peers\n")
    print(f"Python {env['python']}, {env['cpus']} CPUs; versions: "
          + ", ".join(f"{k} {v}" for k, v in env["versions"].items()))
    if env["unavailable"]:
        print("Unavailable: " + "; ".join(f"{k} ({v})" for k, v in env["unavailable"].items()))
    print(f"\nTolerances tuned so that the mean relative suboptimality is <= {args.target:g} "
          f"(reference: FISTA to relative gap 1e-12). '*' = timed on a subsample of rows "
          f"and extrapolated linearly. '/ ours' > 1: slower than ours.\n")
    for res, pb in zip(results, problems):
        print(problem_table(pb, res["peers"], args.threads))
        print()
    for t in args.threads:
        print(summary_table(results, t))
        print()
    if jit is not None:
        print("### JIT: first call of group_sparse_encode in a fresh process (g=1 then g=4)\n")
        for label, res in jit.items():
            if "error" in res:
                print(f"- {label}: ERROR {res['error']}")
                continue
            print(f"- {label}: import {res['import_s']:.2f}s, first calls "
                  f"{res['g1_first_call_s']:.2f}s (g=1) + {res['g4_first_call_s']:.2f}s (g=4), "
                  f"compile/cache-load ~{res['compile_s']:.2f}s, whole process "
                  f"{res['process_wall_s']:.2f}s")
        print()
    total = time.perf_counter() - t_start
    print(f"Total benchmark time: {total:.0f}s")
    if args.json:
        out = {"env": env, "args": vars(args), "results": results, "jit": jit,
               "total_seconds": total}
        Path(args.json).write_text(json.dumps(out, indent=1, default=float))
        log(f"[json] raw figures written to {args.json}")


if __name__ == "__main__":
    main()
