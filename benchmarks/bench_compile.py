"""Where the cold Numba compile goes (issue 13): run in a fresh process with an empty cache.

    NUMBA_CACHE_DIR=$(mktemp -d) python benchmarks/bench_compile.py {snippet,encode,digits,groups} [out]

``snippet``: the first and second g=1 and g=4 calls of ``bench_encode``'s JIT snippet;
``encode``: ``group_sparse_encode`` on float64 / float32, dense / sparse, g = 1 / 4, signed /
non-negative codes; ``digits``: ``DeepStructureLearner().fit(load_digits().data)``;
``groups``: the same with groups of 4 (``n_components=256, group_size=4``), the group
kernel's path as a user of the learner meets it.
Prints the CPU time of each step, the exclusive wall time of every compiled (function,
signature) pair from Numba's compile events (a callee's time is not counted in its
caller's), the package's dispatchers with more than one signature, and the inclusive
compiler-lock / LLVM-lock times per overload. One thread (Numba and BLAS).
"""

import json
import sys
import time

T_START = time.process_time()

import numba  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from numba.core import event  # noqa: E402
from numba.core.registry import CPUDispatcher  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

RECORDER = event.RecordingListener()
event.register("numba:compile", RECORDER)

from sklearn_structlearn import group_sparse_encode  # noqa: E402

T_IMPORT = time.process_time() - T_START


def timed(steps, name, call):
    cpu, wall = time.process_time(), time.perf_counter()
    call()
    steps[name] = (time.process_time() - cpu, time.perf_counter() - wall)


def run(mode, steps):
    rng = np.random.default_rng(0)
    D = rng.standard_normal((64, 100))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.random((200, 100))
    if mode == "snippet":
        for g in (1, 4):
            for k in ("first", "second"):
                timed(steps, f"g{g}_{k}", lambda: group_sparse_encode(
                    X, D, alpha=0.5, group_size=g, tol=1e-6, n_jobs=1))
    elif mode == "encode":
        for dtype in (np.float64, np.float32):
            for sparse in (False, True):
                Xi = X.astype(dtype)
                Xi = sp.csr_matrix(Xi * (Xi > 0.7)) if sparse else Xi
                for g in (1, 4):
                    for positive in (False, True):
                        name = (f"{np.dtype(dtype).name}_{'sparse' if sparse else 'dense'}"
                                f"_g{g}_positive{int(positive)}")
                        timed(steps, name, lambda: group_sparse_encode(
                            Xi, D.astype(dtype), alpha=0.5, group_size=g, tol=1e-6,
                            n_jobs=1, positive=positive))
    elif mode in ("digits", "groups"):
        from sklearn.datasets import load_digits

        from sklearn_structlearn import DeepStructureLearner

        data = load_digits().data
        params = dict(n_components=256, group_size=4) if mode == "groups" else {}
        timed(steps, f"{mode}_fit",
              lambda: DeepStructureLearner(random_state=0, **params).fit(data))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


def exclusive_compile_times(buffer):
    """Wall time of each (function, signature) compile minus its nested compiles."""
    stack, exclusive = [], {}
    for t, ev in buffer:
        func = ev.data["dispatcher"].py_func
        key = f"{func.__module__.split('.')[-1]}.{func.__name__}{ev.data['args']}"
        if ev.is_start:
            stack.append([key, t, 0.0])
            continue
        key, t0, nested = stack.pop()
        exclusive[key] = exclusive.get(key, 0.0) + (t - t0) - nested
        if stack:
            stack[-1][2] += t - t0
    return sorted(((v, k) for k, v in exclusive.items()), reverse=True)


def package_dispatchers():
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("sklearn_structlearn"):
            continue
        for name, obj in vars(module).items():
            if isinstance(obj, CPUDispatcher) and obj.__module__ == module_name:
                yield f"{module_name}.{name}", obj


def main():
    mode = sys.argv[1]
    numba.set_num_threads(1)
    steps = {}
    with threadpool_limits(1):
        run(mode, steps)
    excl = exclusive_compile_times(RECORDER.buffer)
    signatures = {name: [str(s) for s in d.signatures] for name, d in package_dispatchers()
                  if d.signatures}
    locks = []
    for name, d in package_dispatchers():
        for cres in d.overloads.values():
            timers = (cres.metadata or {}).get("timers", {})
            locks.append((timers.get("compiler_lock", 0.0), timers.get("llvm_lock", 0.0), name))
    total = time.process_time() - T_START
    print(f"mode {mode}: import {T_IMPORT:.1f} s CPU, total {total:.1f} s CPU, {len(excl)} "
          "(function, signature) pairs compiled")
    for name, (cpu, wall) in steps.items():
        print(f"  {name}: {cpu:.2f} s CPU ({wall:.2f} s wall)")
    print("  exclusive compile wall time (top 25):")
    for seconds, key in excl[:25]:
        print(f"   {seconds:7.2f}  {key[:160]}")
    print("  dispatchers with more than one signature:")
    for name, sigs in signatures.items():
        if len(sigs) > 1:
            print(f"    {name}: {len(sigs)}")
    print("  compiler lock / LLVM lock, inclusive wall seconds per overload (top 20):")
    for compiler, llvm, name in sorted(locks, reverse=True)[:20]:
        print(f"   {compiler:6.2f} {llvm:6.2f}  {name}")
    if len(sys.argv) > 2:
        with open(sys.argv[2], "x") as f:  # never overwrite a result
            json.dump({"mode": mode, "import_cpu_s": T_IMPORT, "total_cpu_s": total,
                       "steps": steps, "n_compiled": len(excl), "compile_exclusive": excl,
                       "signatures": signatures}, f, indent=1)


if __name__ == "__main__":
    main()
