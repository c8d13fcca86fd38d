"""Thread safety: concurrent calls from several Python threads give the results of serial
calls, leave the process' thread settings as they found them, and every multi-threaded
Numba kernel -- the code kernels the driver runs on its thread pool, and any
``parallel=True`` dispatcher (Numba's default threading layer aborts the process when two
threads launch parallel kernels at once) -- is launched under ``_threads._PARALLEL_LAUNCH``.
"""

import importlib
import pkgutil
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pytest
from numba.core.registry import CPUDispatcher
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

import sklearn_structlearn
from sklearn_structlearn import (
    DeepStructureLearner,
    GroupSparseCodingLayer,
    alpha_max,
    group_sparse_encode,
)
from sklearn_structlearn._threads import _PARALLEL_LAUNCH
from sklearn_structlearn.datasets import load_digits_images

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
N_THREADS = 4


@pytest.fixture(scope="module")
def X():
    return load_digits_images()[0][:400].astype(np.float64)


def _fit(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X)


@pytest.fixture(scope="module")
def layers(X):
    return [_fit(GroupSparseCodingLayer(n_components=16, group_size=4, alpha=0.5, max_iter=3,
                                        random_state=0, n_jobs=n_jobs), X)
            for n_jobs in (1, 2)]


def _run_concurrently(calls):
    """Run the zero-argument ``calls`` on N_THREADS threads, results in order."""
    with ThreadPoolExecutor(N_THREADS) as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result() for future in futures]


def test_concurrent_layer_transforms_equal_serial(X, layers):
    chunks = np.array_split(np.arange(X.shape[0]), 5)
    calls, expected = [], []
    for i in range(24):
        layer, rows = layers[i % 2], chunks[i % 5]
        method = ("transform", "encode")[i % 3 == 0]
        calls.append(lambda layer=layer, rows=rows, method=method:
                     getattr(layer, method)(X[rows]))
        expected.append(getattr(layer, method)(X[rows]))
    for result, serial in zip(_run_concurrently(calls), expected):
        assert_array_equal(result, serial)


def test_concurrent_group_sparse_encode_equals_serial(X):
    rng = np.random.default_rng(0)
    problems = []
    for i in range(16):
        group_size = (1, 2, 4)[i % 3]
        D = rng.standard_normal((8 * group_size, X.shape[1]))
        D /= np.linalg.norm(D, axis=1, keepdims=True)
        rows = X[rng.choice(X.shape[0], 100, replace=False)]
        data = rows.astype(np.float32) if i % 4 == 0 else rows
        kwargs = dict(alpha=0.2 * alpha_max(rows, D, group_size), group_size=group_size,
                      positive=bool(i % 2), n_jobs=(1, 2, None)[i % 3])
        problems.append((data, D, kwargs))
    expected = [group_sparse_encode(data, D, **kwargs) for data, D, kwargs in problems]
    results = _run_concurrently([lambda p=p: group_sparse_encode(p[0], p[1], **p[2])
                                 for p in problems])
    for result, serial in zip(results, expected):
        assert result.dtype == serial.dtype
        assert_array_equal(result, serial)


def test_concurrent_learner_transforms_equal_serial(X):
    learner = _fit(DeepStructureLearner(max_depth=2, n_components=16, group_size=4,
                                        depth_tol=-np.inf, max_iter=3, random_state=0), X)
    expected = learner.transform(X)
    for result in _run_concurrently([lambda: learner.transform(X)] * 8):
        assert_array_equal(result, expected)


def test_concurrent_fits_equal_serial_fits(X):
    # independent estimators fitted at the same time (as GridSearchCV with a threading
    # backend would) learn what they learn alone. BLAS called from several threads at once
    # may split its work differently, so the bound is the documented n_jobs one (fits
    # amplify rounding); bitwise equal in our runs
    base = [GroupSparseCodingLayer(n_components=16, group_size=4, alpha=0.5, max_iter=3,
                                   random_state=seed, n_jobs=2) for seed in range(3)]
    base.append(GroupSparseCodingLayer(n_components=16, group_size=2, alpha=0.5, max_iter=2,
                                       batch_size=100, random_state=0, n_jobs=2))
    expected = [_fit(clone(est), X).components_ for est in base]
    results = _run_concurrently([lambda est=est: _fit(clone(est), X).components_
                                 for est in base])
    for result, serial in zip(results, expected):
        assert_allclose(result, serial, rtol=0, atol=1e-4)


def test_thread_settings_are_restored_after_concurrent_calls(X, layers, blas_threads):
    # regression: each call restored the BLAS limit it found on entry, so interleaved calls
    # left BLAS capped at another call's limit after all of them had returned
    blas_before, numba_before = blas_threads(), numba.get_num_threads()
    for _ in range(3):
        _run_concurrently([lambda i=i: layers[i % 2].transform(X[:50]) for i in range(16)])
        assert blas_threads() == blas_before
        assert numba.get_num_threads() == numba_before


def test_calls_from_many_threads_leave_their_own_numba_setting_alone(X, layers):
    def worker():
        numba.set_num_threads(1)
        layers[1].transform(X[:20])  # runs with n_jobs=2 inside, then restores
        return numba.get_num_threads()

    assert _run_concurrently([worker] * 8) == [1] * 8


# --------------------------------------------------------------------------- the launch lock
def _parallel_kernels():
    """The code kernels run on the driver's threads, and every Numba dispatcher compiled
    with parallel=True in the package: (module, name)."""
    from sklearn_structlearn._solvers import _encode

    found = [(_encode, "encode_lasso"), (_encode, "encode_bcd_signed"),
             (_encode, "encode_bcd_nonneg")]
    for info in pkgutil.walk_packages(sklearn_structlearn.__path__, "sklearn_structlearn."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # optional dependencies (torch, matplotlib) of some modules
            continue
        for name, value in vars(module).items():
            if (isinstance(value, CPUDispatcher) and value.targetoptions.get("parallel")
                    and value.__module__ == module.__name__ and (module, name) not in found):
                found.append((module, name))
    return found


def test_every_parallel_kernel_is_launched_under_the_lock(X, monkeypatch):
    kernels = _parallel_kernels()
    calls = {}

    def guarded(key, kernel):
        def launch(*args, **kwargs):
            assert _PARALLEL_LAUNCH.locked(), f"{key} launched without _PARALLEL_LAUNCH"
            calls[key] = calls.get(key, 0) + 1
            return kernel(*args, **kwargs)

        return launch

    for module, name in kernels:
        key = f"{module.__name__}.{name}"
        kernel = getattr(module, name)
        # patch the kernel where it is defined and wherever it was imported by name
        for mod_name, mod in list(sys.modules.items()):
            if mod_name.startswith("sklearn_structlearn") and getattr(mod, name, None) is kernel:
                monkeypatch.setattr(mod, name, guarded(key, kernel))
    # a workload that goes through every code path of the package that codes data
    D = np.random.default_rng(0).standard_normal((8, X.shape[1]))
    group_sparse_encode(X[:50], D, alpha=0.5, group_size=2)
    group_sparse_encode(X[:50], D, alpha=0.5, group_size=1)  # the lasso kernel
    layer = _fit(GroupSparseCodingLayer(n_components=8, group_size=2, max_iter=2,
                                        random_state=0), X)
    layer.transform(X[:20])
    layer.partial_fit(X[:40])
    learner = _fit(DeepStructureLearner(max_depth=2, n_components=8, group_size=2, max_iter=2,
                                        depth_tol=-np.inf, image_shape=(8, 8),
                                        random_state=0), X[:200])
    learner.transform(X[:20])
    uncovered = sorted(f"{m.__name__}.{n}" for m, n in kernels
                       if f"{m.__name__}.{n}" not in calls)
    assert not uncovered, f"parallel kernels not exercised by this test: {uncovered}"
