"""Ctrl-C reaches the code solver while it runs (issue 16, item 13).

A Numba kernel holds the main thread until it returns, and Python only raises
``KeyboardInterrupt`` when it runs bytecode again; so the driver must call the kernels in
bounded slices (blocks of rows, a bounded number of outer iterations per row and call).
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from sklearn_structlearn import alpha_max
from sklearn_structlearn._solvers import _encode
from sklearn_structlearn._solvers._encode import solve_codes
from sklearn_structlearn.objective import code_duality_gap, code_objective

ROOT = Path(__file__).resolve().parents[1]

# tol=0 never certifies a row: without slicing, the kernel call would run max_iter=10**9
# outer iterations per row -- for hours -- before Python could see the signal
_SCRIPT = textwrap.dedent("""
    import faulthandler
    import signal
    import sys
    import numpy as np
    from sklearn_structlearn._solvers._encode import solve_codes

    rng = np.random.default_rng(0)
    D = rng.standard_normal((120, 40))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((64, 40))
    init = rng.standard_normal((64, 120))
    saved = init.copy()
    group_size = int(sys.argv[1])
    alpha = 0.05 * np.sqrt(((X @ D.T).reshape(64, -1, group_size) ** 2).sum(-1)).max()
    # Ctrl-C as in a terminal: a parent that ignores SIGINT (a non-interactive shell's
    # background job, "cmd &") hands the ignore on, and Python then installs no handler
    signal.signal(signal.SIGINT, signal.default_int_handler)
    solve_codes(X[:2], D, alpha, group_size)  # compile or load the kernels first
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # where it is, if it hangs
    print("ready", flush=True)
    try:
        solve_codes(X, D, alpha, group_size, init=init, tol=0.0, max_iter=10**9)
    except KeyboardInterrupt:
        print("interrupted", np.array_equal(init, saved), flush=True)
        sys.exit(3)
    print("finished", flush=True)
""")


@pytest.mark.skipif(os.name != "posix", reason="SIGINT to a child process")
@pytest.mark.parametrize("group_size", [1, 4])
def test_ctrl_c_interrupts_a_long_solve(group_size):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, str(group_size)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # generous: a cold Numba cache compiles the kernels first
        deadline = time.monotonic() + 600
        line = ""
        while "ready" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
        assert "ready" in line, proc.stderr.read()
        time.sleep(1.0)  # inside the long solve
        proc.send_signal(signal.SIGINT)
        # the bound is generous (a slice is ~0.25 s); without slicing this never returns
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            # a failure must say where the child was: dump its threads' stacks first
            proc.send_signal(signal.SIGUSR1)
            time.sleep(2.0)
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"no exit 120 s after SIGINT; stacks of the child:\n{err}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 3, (out, err)
    # the caller's warm start is untouched: nothing is written before the solve ends
    assert "interrupted True" in out


def test_sliced_calls_give_certified_codes_and_report_progress(make_problem, monkeypatch):
    # tiny slices: one row per task and two outer iterations per call, so that rows are
    # resumed from their codes many times; the result must still be certified
    monkeypatch.setattr(_encode, "_SLICE_ITERATIONS", 2)
    rng = np.random.default_rng(0)
    X, D = make_problem(rng, n_samples=40, n_features=15, n_components=24)
    for group_size in (1, 4):
        alpha = 0.05 * alpha_max(X, D, group_size)
        seen = []
        codes, n_iter, gaps, primals = solve_codes(
            X, D, alpha, group_size, tol=1e-10, slice_seconds=1e-9,
            callback=lambda done, n: seen.append((done, n)))
        assert len(seen) > 1
        assert [n for _, n in seen] == [40] * len(seen)
        assert np.all(np.diff([d for d, _ in seen]) >= 0) and seen[-1][0] == 40
        assert np.any(n_iter > 2)  # some rows were resumed across calls
        gap = code_duality_gap(X, D, codes, alpha, group_size)
        assert np.all(gap <= 1e-10 * code_objective(X, D, codes, alpha, group_size))
        # the driver's own certificate is the true gap
        np.testing.assert_allclose(gaps, gap, rtol=1e-6, atol=1e-12 * primals.max())
        # unsliced, the same certificate (the codes may differ within it)
        ref = solve_codes(X, D, alpha, group_size, tol=1e-10)[0]
        np.testing.assert_allclose(code_objective(X, D, codes, alpha, group_size),
                                   code_objective(X, D, ref, alpha, group_size), rtol=1e-9)


def test_max_iter_is_a_total_over_slices(make_problem, monkeypatch):
    monkeypatch.setattr(_encode, "_SLICE_ITERATIONS", 3)
    rng = np.random.default_rng(1)
    X, D = make_problem(rng, n_samples=10, n_features=12, n_components=20)
    alpha = 0.01 * alpha_max(X, D)
    _, n_iter, _, _ = solve_codes(X, D, alpha, tol=0.0, max_iter=7, slice_seconds=1e-9)
    assert np.all(n_iter <= 7)
    assert np.any(n_iter == 7)
