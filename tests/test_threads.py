"""Threads: n_jobs sets the Numba threads, BLAS is capped alongside, and parallel model
selection in processes neither oversubscribes the cores nor changes results; fork-based
process pools work after a fit (concurrent calls from Python threads are tested in
test_concurrency.py)."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from joblib import Parallel, delayed
from numpy.testing import assert_allclose
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from sklearn_structlearn import GroupSparseCodingLayer
from sklearn_structlearn._solvers._encode import _products, _row_blocks_product, solve_codes
from sklearn_structlearn._threads import effective_n_jobs, serial_blas, thread_limits
from sklearn_structlearn.datasets import load_digits_images

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_images()
    return X[:300], y[:300]


def test_n_jobs_none_follows_omp_num_threads(monkeypatch):
    max_threads = numba.config.NUMBA_NUM_THREADS
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert effective_n_jobs(None) == max_threads
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert effective_n_jobs(None) == 1
    assert effective_n_jobs(max_threads) == max_threads  # an explicit n_jobs is obeyed
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")  # nested OpenMP syntax: the outer level
    assert effective_n_jobs(None) == min(4, max_threads)
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert effective_n_jobs(None) == max_threads


def test_joblib_workers_do_not_oversubscribe():
    # loky sets OMP_NUM_THREADS = n_cores // n_jobs in its workers
    n_cores = os.cpu_count()
    per_worker = Parallel(n_jobs=2)(delayed(effective_n_jobs)(None) for _ in range(2))
    assert all(1 <= n <= max(n_cores // 2, 1) for n in per_worker), per_worker


def test_thread_limits_sets_numba_and_caps_blas(blas_threads):
    before = numba.get_num_threads()
    with thread_limits(1) as n:
        assert n == 1 and numba.get_num_threads() == 1
        blas = blas_threads()
        assert blas and all(t == 1 for t in blas)
    assert numba.get_num_threads() == before


def test_serial_blas_holds_one_thread_and_gives_back_the_limit_it_found(blas_threads):
    original = blas_threads()
    with thread_limits(2) as n:  # n < 2 where Numba has one thread
        assert set(blas_threads()) == {n}
        with serial_blas():
            assert set(blas_threads()) == {1}
            with thread_limits(2):  # a nested entry shares the limit: still one thread
                assert set(blas_threads()) == {1}
        assert set(blas_threads()) == {n}  # back to the caller's n_jobs
    assert blas_threads() == original
    with serial_blas():  # outside any thread_limits block
        assert set(blas_threads()) == {1}
    assert blas_threads() == original


def test_a_solve_on_two_threads_leaves_blas_as_it_found_it(blas_threads):
    rng = np.random.RandomState(0)
    X, D = rng.rand(300, 20), rng.randn(40, 20)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    original = blas_threads()
    with thread_limits(2) as n:
        solve_codes(X, D, 0.1)
        assert set(blas_threads()) == {n}
    assert blas_threads() == original


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("n_rows", [0, 1, 5, 301])
def test_products_in_row_blocks_are_the_product(n_threads, n_rows):
    rng = np.random.RandomState(n_rows)
    A, D = rng.rand(n_rows, 30).astype(np.float32), rng.randn(17, 30)
    with thread_limits(n_threads), serial_blas():
        product = _row_blocks_product(A, D.T, n_threads)
    assert product.dtype == np.result_type(A, D) and product.shape == (n_rows, 17)
    assert_allclose(product, A @ D.T, rtol=1e-12, atol=1e-12)


def test_the_gram_matrix_has_the_same_bits_on_any_number_of_threads():
    # a fit amplifies rounding differences of G into another dictionary (and the Cholesky
    # steps read one triangle): G must be exactly symmetric and thread-independent
    rng = np.random.RandomState(0)
    X, D = rng.rand(200, 64), rng.randn(48, 64)
    grams = []
    for n_threads in (1, 2):
        with thread_limits(n_threads):
            rows, C = _products(X, D, None, None, n_threads)
        assert_allclose(C, X @ D.T, rtol=1e-12, atol=1e-12)
        grams.append(rows.G)
    assert np.array_equal(grams[0], grams[1]) and np.array_equal(grams[0], grams[0].T)


def test_grid_search_with_processes_gives_the_sequential_results(digits):
    X, y = digits
    pipe = Pipeline([
        ("layer", GroupSparseCodingLayer(n_components=32, group_size=4, max_iter=5,
                                         random_state=0)),
        ("clf", LogisticRegression(max_iter=500)),
    ])
    grid = {"layer__alpha": [0.05, 0.2], "layer__group_size": [2, 4]}
    parallel = GridSearchCV(pipe, grid, cv=2, n_jobs=2).fit(X, y)
    sequential = GridSearchCV(pipe, grid, cv=2, n_jobs=1).fit(X, y)
    assert_allclose(parallel.cv_results_["mean_test_score"],
                    sequential.cv_results_["mean_test_score"])
    assert parallel.best_params_ == sequential.best_params_
    assert parallel.best_score_ > 0.5  # 8-16 pooled outputs of digits: far above chance



# ------------------------------------------------------------------------- fork safety
# A parent that has fitted and transformed, then a fork-based Pool whose children fit and
# transform too. On Numba's GNU OpenMP threading layer the children abort and the pool
# waits forever: the subprocess and its children are killed at the timeout.
_FORK_CHILD = textwrap.dedent(
    """
    import json, multiprocessing, sys, warnings
    import numpy as np
    warnings.simplefilter("ignore")
    from sklearn_structlearn import DeepStructureLearner, GroupSparseCodingLayer

    X = np.random.RandomState(0).rand(120, 16)

    def work(seed):
        layer = GroupSparseCodingLayer(n_components=8, group_size=2, alpha=0.05, max_iter=3,
                                       random_state=seed, n_jobs=2).fit(X)
        deep = DeepStructureLearner(max_depth=1, n_components=8, group_size=2, max_iter=2,
                                    random_state=seed, n_jobs=2).fit(X)
        return np.hstack([layer.transform(X), deep.transform(X)])

    if __name__ == "__main__":
        parent = work(0)  # the threading layer is started in the parent before the fork
        with multiprocessing.get_context("fork").Pool(2) as pool:
            children = pool.map(work, [0, 1])
        import numba
        print(json.dumps({"layer": numba.threading_layer(),
                          "equal": bool(np.array_equal(children[0], parent))}))
    """
)


def _run_child(code, env, timeout=300, args=()):
    """Run ``code`` in a new session; kill the whole session (pool workers too) on timeout."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(env, PYTHONPATH=root + os.pathsep + env.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the fork-based pool hung (killed after {timeout} s): {err[-2000:]}")
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _env_without_layer_choice():
    return {k: v for k, v in os.environ.items()
            if k not in ("NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY")}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_fork_pool_after_fit_does_not_hang():
    # regression: numba picked its GNU OpenMP layer, and forked children aborted
    result = _run_child(_FORK_CHILD, _env_without_layer_choice())
    assert result["equal"], result  # a child computes what the parent computed
    assert result["layer"] in ("tbb", "workqueue", "omp")
    if sys.platform.startswith("linux"):
        assert result["layer"] != "omp"  # GNU OpenMP is not fork-safe


_LAYER_CHILD = textwrap.dedent(
    """
    import json, sys, warnings
    import numpy as np
    warnings.simplefilter("ignore")
    import numba
    if sys.argv[1:]:  # a choice made in code, before importing the package
        numba.config.THREADING_LAYER = sys.argv[1]
    from sklearn_structlearn import GroupSparseCodingLayer
    X = np.random.RandomState(0).rand(50, 6)
    GroupSparseCodingLayer(n_components=4, alpha=0.05, max_iter=2, random_state=0).fit(X)
    print(json.dumps({"layer": numba.threading_layer()}))
    """
)


@pytest.mark.parametrize("how", ["environment", "code"])
@pytest.mark.parametrize("choice", ["omp", "workqueue"])
def test_the_users_threading_layer_is_respected(choice, how):
    env = _env_without_layer_choice()
    if how == "environment":
        env["NUMBA_THREADING_LAYER"] = choice
    try:
        result = _run_child(_LAYER_CHILD, env, args=[choice] if how == "code" else [])
    except AssertionError as exc:  # e.g. no OpenMP runtime on this machine
        if "No threading layer could be loaded" in str(exc):
            pytest.skip(f"Numba cannot load {choice} here")
        raise
    assert result["layer"] == choice
