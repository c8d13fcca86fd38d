"""Wide and local dictionaries (issue 13): the code solver against its peers and floors.

One run measures, on Fashion-MNIST rows (p = 784), for K = 256, 1024 (and 4096 with
``--K 256 1024 4096``), dense dictionaries and sparse, local ones:

- lasso (``group_size=1``): this package against SPAMS ``lasso`` (LARS) and
  ``sklearn.decomposition.sparse_encode`` (``lasso_lars``; ``lasso_cd`` with its tol
  tuned), at 1 and 2 threads;
- groups of 4: against celer and skglm ``GroupLasso`` (one fit per row, tol tuned);
- the floors: the dense product ``X @ D.T`` and the sparse product ``X @ csr(D).T``
  (scipy, one thread) of the same shapes;
- the cold-cache compile and the warm-cache first call in fresh processes.

Accuracy is matched and verified: the reference codes are this package's at a relative
duality gap of 1e-10, certified by the NumPy duality gap of ``objective.py``; our timed
run stops at a relative gap of 1e-6 (a per-row certificate of suboptimality <= 1e-6,
re-checked on every row after the run); tolerance-driven peers get the loosest tol of a
ladder whose mean relative suboptimality on calibration rows is <= 1e-6, and the
suboptimality of every timed run is measured on the reference rows.

Dictionaries. Dense: one pass of MiniBatchDictionaryLearning (``bench_encode``) for
K <= 1024, normalised training images for K = 4096 (a one-pass fit at that width costs
more than the rest of the run). Local: centred training images masked to a random
``w x w`` window, w in 5..9 (fan-in 3-10%, mean ~6%; the layer's learned atoms at
K = 256 had fan-in ~11%). alpha gives ~28 non-zero codes per row at every K (11% at
K = 256, the setting of §1 and §6).

Run ``nice -n 10 python benchmarks/bench_kernels.py --json out.json`` (~30 min on
two shared cores); ``--quick`` is a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import get_peer, primal_objective, suboptimality  # noqa: E402
from _timing import fmt_seconds, measure, pinned_threads  # noqa: E402
from bench_encode import learn_dictionary, load_fashion, measure_jit  # noqa: E402

LADDER = (1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10)
NNZ_PER_ROW = 28


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Problems
# ---------------------------------------------------------------------------------------


def local_dictionary(X_dict, n_components, min_side=5, max_side=9, seed=0):
    """Centred images masked to random square windows: sparse, local, unit-norm atoms."""
    rng = np.random.default_rng(seed)
    Xc = X_dict - X_dict.mean(axis=0)
    D = np.zeros((n_components, 784))
    k = 0
    while k < n_components:
        side = int(rng.integers(min_side, max_side + 1))
        r, c = rng.integers(0, 28 - side + 1, size=2)
        mask = np.zeros((28, 28), bool)
        mask[r:r + side, c:c + side] = True
        atom = Xc[rng.integers(len(Xc))] * mask.ravel()
        norm = np.linalg.norm(atom)
        if norm < 1e-3 * side:  # a blank corner: draw again
            continue
        D[k] = atom / norm
        k += 1
    return D


def dense_dictionary(X_dict, n_components):
    if n_components <= 1024:
        return learn_dictionary(X_dict, n_components)
    D = X_dict[:n_components]
    return np.ascontiguousarray(D / np.linalg.norm(D, axis=1, keepdims=True))


def choose_alpha(X, D, group_size, target_nnz, n_rows=64):
    """Bisection in log alpha for a fraction ``target_nnz`` of non-zero codes (our solver)."""
    from sklearn_structlearn._solvers._encode import solve_codes

    Xs = X[:n_rows]
    C = Xs @ D.T
    hi = float(np.sqrt((C.reshape(n_rows, -1, group_size) ** 2).sum(-1)).max())
    lo, nnz = hi * 1e-4, 1.0
    for _ in range(30):
        mid = float(np.sqrt(lo * hi))
        A = solve_codes(Xs, D, mid, group_size, tol=1e-4, max_iter=10_000)[0]
        nnz = float(np.mean(A != 0))
        if abs(nnz - target_nnz) < 0.05 * target_nnz:
            break
        if nnz > target_nnz:
            lo = mid
        else:
            hi = mid
    return mid, nnz


def certified_reference(X, D, alpha, group_size):
    """Our codes at a relative gap of 1e-10, and the gap recomputed in NumPy."""
    from sklearn_structlearn import group_sparse_encode
    from sklearn_structlearn.objective import code_duality_gap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        A = group_sparse_encode(X, D, alpha=alpha, group_size=group_size, tol=1e-10,
                                max_iter=100_000)
    obj = primal_objective(X, D, A, alpha, group_size)
    gap = code_duality_gap(X, D, A, alpha, group_size)
    return A, obj, gap / obj


# ---------------------------------------------------------------------------------------
# Peers
# ---------------------------------------------------------------------------------------


def solve_ours(X, D, alpha, group_size, tol, n_threads):
    from sklearn_structlearn import group_sparse_encode

    return group_sparse_encode(X, D, alpha=alpha, group_size=group_size, tol=tol,
                               max_iter=10_000, n_jobs=n_threads)


def floor_dense(X, D, alpha, group_size, tol, n_threads):
    return X @ D.T


def floor_sparse(X, D, alpha, group_size, tol, n_threads):
    # the CSR copy of D is part of the cost (the solver makes it too)
    return np.asarray(X @ sp.csr_matrix(D).T)


# name -> (solve, group sizes, tol ladder or None (exact / fixed), thread counts, note)
def peer_table(args):
    one = args.threads[:1]
    return {
        "ours": (solve_ours, (1, 4), None, args.threads, "group_sparse_encode, tol=1e-6 gap"),
        "spams_lasso": (get_peer("spams_lasso").solve, (1,), None, args.threads,
                        "spams.lasso LARS, exact"),
        "sklearn_lars": (get_peer("sklearn_lars").solve, (1,), None, args.threads,
                         "sparse_encode lasso_lars, exact"),
        "sklearn_cd": (get_peer("sklearn_cd").solve, (1,), LADDER, one,
                       "sparse_encode lasso_cd (Gram), tol tuned"),
        "celer": (get_peer("celer").solve, (4,), LADDER, one, "GroupLasso per row, tol tuned"),
        "skglm": (get_peer("skglm").solve, (4,), LADDER, one, "GroupLasso per row, tol tuned"),
        "floor_dense": (floor_dense, (1, 4), None, args.threads, "X @ D.T (BLAS)"),
        "floor_sparse": (floor_sparse, (1, 4), None, one, "X @ csr(D).T (scipy, 1 thread)"),
    }


def calibrate(solve, pb, ladder, args):
    """Loosest tol whose mean relative suboptimality on calibration rows is <= target."""
    n_cal = min(args.n_cal, pb["n_ref"])
    Xc = pb["X"][:n_cal]
    steps = []
    for tol in ladder:
        t0 = time.perf_counter()
        with pinned_threads(1):
            A = solve(Xc, pb["D"], pb["alpha"], pb["g"], tol, 1)
        seconds = time.perf_counter() - t0
        sub = suboptimality(Xc, pb["D"], A, pb["alpha"], pb["g"], pb["ref_obj"][:n_cal])
        steps.append({"tol": tol, "mean": float(sub.mean()), "max": float(sub.max()),
                      "seconds": seconds})
        if sub.mean() <= args.target:
            return tol, seconds / n_cal, steps
        if seconds > args.cal_budget:
            break
    return steps[-1]["tol"], steps[-1]["seconds"] / n_cal, steps


def run_peer(name, spec, pb, args):
    solve, _, ladder, threads, note = spec
    X, D, alpha, g = pb["X"], pb["D"], pb["alpha"], pb["g"]
    n = X.shape[0]
    tol, steps = (1e-6 if name == "ours" else None), None
    solve(X[:4], D, alpha, g, tol if ladder is None else ladder[0], 1)  # imports, JIT
    if ladder is not None:
        tol, per_row, steps = calibrate(solve, pb, ladder, args)
    else:
        t0 = time.perf_counter()
        with pinned_threads(1):
            solve(X[:64], D, alpha, g, tol, 1)
        per_row = (time.perf_counter() - t0) / 64
    m = n
    if per_row * n > args.max_seconds:
        m = int(np.clip(args.extrapolate_seconds / per_row, 20, n))
    out = {"peer": name, "tol": tol, "note": note, "rows_timed": m, "calibration": steps}
    codes = None
    for t in threads:
        with pinned_threads(t):
            solve(X[:max(4, 2 * t)], D, alpha, g, tol, t)  # thread pools, joblib workers
            timing, A = measure(lambda: solve(X[:m], D, alpha, g, tol, t), repeats=args.repeats,
                                budget=args.time_budget, scale=n / m,
                                extrapolated_from=m if m < n else None)
        out[f"t{t}"] = timing.as_dict()
        codes = A if codes is None else codes
    if not name.startswith("floor"):
        n_ref = min(pb["n_ref"], codes.shape[0])
        sub = suboptimality(X[:n_ref], D, codes[:n_ref], alpha, g, pb["ref_obj"][:n_ref])
        out.update(subopt_mean=float(sub.mean()), subopt_max=float(sub.max()),
                   nnz=float(np.mean(codes != 0)))
        if name == "ours":  # the certificate, re-checked on every timed row
            from sklearn_structlearn.objective import code_duality_gap

            rel = code_duality_gap(X[:m], D, codes, alpha, g) / primal_objective(
                X[:m], D, codes, alpha, g)
            out["rel_gap_max_all_rows"] = float(rel.max())
    return out


def jit_times():
    """Cold-cache compile and warm-cache first call in fresh processes, with their CPU time.

    The CPU time of the two child processes (cold, then warm) is the ``getrusage`` delta:
    on a loaded machine the wall time of a compile says little.
    """
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = measure_jit(1)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    for label, r in res.items():
        print(f"- JIT {label} (1 thread): " + (
            f"first calls g=1 {r['g1_first_call_s']:.2f}s, g=4 {r['g4_first_call_s']:.2f}s,"
            f" second calls {r['g1_second_call_s']:.3f}s / {r['g4_second_call_s']:.3f}s,"
            f" compile or cache load ~{r['compile_s']:.2f}s wall, process"
            f" {r['process_wall_s']:.1f}s wall" if "error" not in r
            else f"ERROR {r['error']}"), flush=True)
    print(f"- JIT: CPU time of both processes (cold + warm, imports included) {cpu:.1f}s",
          flush=True)
    res["children_cpu_s"] = cpu
    return res


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------


def table(pb, rows, threads):
    by = {r["peer"]: r for r in rows}
    lines = [f"**{pb['name']}**: n={pb['X'].shape[0]}, K={pb['K']}, group_size={pb['g']}, "
             f"D density {pb['density']:.3f}, G density {pb['gram_density']:.3f}, "
             f"alpha={pb['alpha']:.4g}, nnz {pb['nnz']:.3f}, reference rel gap "
             f"<= {pb['ref_gap_max']:.0e} on {pb['n_ref']} rows", ""]
    head = "| solver | tol |"
    for t in threads:
        head += f" wall {t}thr | cpu {t}thr | / ours {t}thr |"
    head += " / dense floor (1thr) | / sparse floor (1thr) | subopt mean | subopt max | note |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        star = "*" if r["rows_timed"] < pb["X"].shape[0] else ""
        tol = "-" if r["tol"] is None else f"{r['tol']:.0e}"
        line = f"| {r['peer']}{star} | {tol} |"
        for t in threads:
            tm = r.get(f"t{t}")
            ours = by.get("ours", {}).get(f"t{t}")
            if tm is None:
                line += " - | - | - |"
                continue
            ratio = f"{tm['wall'] / ours['wall']:.2f}x" if ours else "-"
            line += f" {fmt_seconds(tm['wall'])} | {fmt_seconds(tm['cpu'])} | {ratio} |"
        t1 = r.get(f"t{threads[0]}")
        for fl in ("floor_dense", "floor_sparse"):
            f = by.get(fl, {}).get(f"t{threads[0]}")
            line += f" {t1['wall'] / f['wall']:.1f}x |" if (f and t1) else " - |"
        sm, sx = r.get("subopt_mean"), r.get("subopt_max")
        line += (f" {sm:.1e} | {sx:.1e} |" if sm is not None else " - | - |") + f" {r['note']} |"
        lines.append(line)
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--K", nargs="*", type=int, default=[256, 1024])
    p.add_argument("--kinds", nargs="*", default=["dense", "local"])
    p.add_argument("--group-sizes", nargs="*", type=int, default=[1, 4])
    p.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    p.add_argument("--n", type=int, default=2000, help="rows coded")
    p.add_argument("--n-ref", type=int, default=100, help="rows with a certified reference")
    p.add_argument("--n-cal", type=int, default=30, help="rows to tune peers' tol on")
    p.add_argument("--target", type=float, default=1e-6)
    p.add_argument("--cal-budget", type=float, default=20.0)
    p.add_argument("--max-seconds", type=float, default=30.0,
                   help="peers projected slower than this are timed on a subsample (*)")
    p.add_argument("--extrapolate-seconds", type=float, default=6.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--time-budget", type=float, default=8.0)
    p.add_argument("--peers", nargs="*", default=None)
    p.add_argument("--no-jit", action="store_true")
    p.add_argument("--jit-only", action="store_true", help="only the compile-time measurement")
    args = p.parse_args(argv)
    if args.quick:
        args.K, args.n, args.n_ref, args.n_cal = [64], 200, 30, 10
        args.max_seconds, args.extrapolate_seconds, args.repeats = 5.0, 1.0, 1
    return args


def main(argv=None):
    args = parse_args(argv)
    t_start = time.perf_counter()
    import spams  # noqa: F401  (imported before pinning: threadpoolctl must see its runtime)
    import sklearn_structlearn  # noqa: F401
    from importlib import metadata

    versions = {d: metadata.version(d) for d in ("sklearn-structlearn", "numpy", "scipy",
                                                  "numba", "scikit-learn", "spams-bin",
                                                  "celer", "skglm")}
    env = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
           "cpus": os.cpu_count(), "python": platform.python_version(), "versions": versions,
           "load_at_start": os.getloadavg()}
    log(f"[env] {env}")
    jit = None if args.no_jit else jit_times()
    if args.jit_only:
        return
    X_all = load_fashion(args.n + 4096, random_state=0)
    X_dict, X = X_all[:4096], np.ascontiguousarray(X_all[4096:])
    peers = peer_table(args)
    if args.peers:
        peers = {k: v for k, v in peers.items() if k in args.peers or k == "ours"}
    results = []
    for K in args.K:
        for kind in args.kinds:
            t0 = time.perf_counter()
            D = dense_dictionary(X_dict, K) if kind == "dense" else local_dictionary(X_dict, K)
            log(f"[dict] {kind} K={K} in {time.perf_counter() - t0:.1f}s")
            G = D @ D.T
            for g in args.group_sizes:
                pb = {"name": f"{kind}-K{K}-g{g}", "X": X, "D": D, "g": g, "K": K,
                      "density": float(np.mean(D != 0)),
                      "gram_density": float(np.mean(G != 0)),
                      "n_ref": min(args.n_ref, X.shape[0])}
                t0 = time.perf_counter()
                pb["alpha"], pb["nnz"] = choose_alpha(X, D, g, min(0.5, NNZ_PER_ROW / K))
                _, pb["ref_obj"], rel = certified_reference(X[:pb["n_ref"]], D, pb["alpha"], g)
                pb["ref_gap_max"] = float(rel.max())
                log(f"[ref] {pb['name']}: alpha {pb['alpha']:.4g} nnz {pb['nnz']:.3f}, "
                    f"certified rel gap {rel.max():.1e} ({time.perf_counter() - t0:.1f}s)")
                rows = []
                for name, spec in peers.items():
                    if g not in spec[1]:
                        continue
                    t0 = time.perf_counter()
                    try:
                        row = run_peer(name, spec, pb, args)
                    except Exception as exc:  # noqa: BLE001 -- one broken peer must not stop all
                        row = {"peer": name, "tol": None, "rows_timed": X.shape[0],
                               "note": f"FAILED {type(exc).__name__}: {exc}"}
                    log(f"[run] {pb['name']} {name} ({time.perf_counter() - t0:.0f}s): "
                        + ", ".join(f"t{t}={fmt_seconds(row[f't{t}']['wall'])}"
                                    for t in args.threads if f"t{t}" in row)
                        + (f" subopt {row['subopt_mean']:.1e}/{row['subopt_max']:.1e}"
                           if "subopt_mean" in row else "")
                        + (f" gap(all rows) {row['rel_gap_max_all_rows']:.1e}"
                           if "rel_gap_max_all_rows" in row else ""))
                    rows.append(row)
                text = table(pb, rows, args.threads)
                print(text + "\n", flush=True)
                results.append({k: v for k, v in pb.items() if k not in ("X", "D", "ref_obj")}
                               | {"rows": rows, "table": text})
                if args.json:  # after every problem: a long run killed midway keeps its figures
                    _write_json(args.json, env, args, results, jit, time.perf_counter() - t_start)
    env["load_at_end"] = os.getloadavg()
    total = time.perf_counter() - t_start
    print(f"\n{env['date']}, {env['machine']}, {env['cpus']} CPUs, load {env['load_at_start']}"
          f" -> {env['load_at_end']}; total {total:.0f}s; versions {versions}")
    if args.json:
        _write_json(args.json, env, args, results, jit, total)


def _write_json(path, env, args, results, jit, total):
    Path(path).write_text(json.dumps({"env": env, "args": vars(args), "results": results,
                                      "jit": jit, "total_seconds": total}, indent=1,
                                     default=float))


if __name__ == "__main__":
    main()
