"""Threads: n_jobs sets the Numba threads, BLAS is capped alongside, and parallel model
selection in processes neither oversubscribes the cores nor changes results (concurrent
calls from Python threads are tested in test_concurrency.py)."""

import os

import numba
import pytest
from joblib import Parallel, delayed
from numpy.testing import assert_allclose
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_info

from sklearn_structlearn import GroupSparseCodingLayer
from sklearn_structlearn._threads import effective_n_jobs, thread_limits
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


def test_thread_limits_sets_numba_and_caps_blas():
    before = numba.get_num_threads()
    with thread_limits(1) as n:
        assert n == 1 and numba.get_num_threads() == 1
        blas = [pool["num_threads"] for pool in threadpool_info()
                if pool["user_api"] == "blas"]
        assert blas and all(t == 1 for t in blas)
    assert numba.get_num_threads() == before


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

