"""Dask: fitting over a dask.array block by block and transforming lazily give the
in-memory results, on a real multi-process ``LocalCluster``.

One cluster (two worker processes, one thread each) serves the whole module; it is
skipped when dask / distributed are not installed (the ``dask`` extra).
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from sklearn_structlearn import DeepStructureLearner, GroupSparseCodingLayer  # noqa: E402
from sklearn_structlearn.datasets import make_planted_structure  # noqa: E402
from sklearn_structlearn.distributed import fit_dask, transform_dask  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N_BLOCKS = 4
BLOCK = 100


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=":0",  # any free port: never clash with another cluster
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def data():
    return make_planted_structure(n_samples=N_BLOCKS * BLOCK, n_features=16, n_components=8,
                                  group_size=2, fan_in=4, active_groups=1, noise=0.01,
                                  random_state=0).X


def make_layer():
    return GroupSparseCodingLayer(n_components=8, group_size=2, alpha=0.2,
                                  connectivity_alpha=0.005, random_state=0)


def partial_fit_in_memory(X, n_passes=1):
    layer = make_layer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(n_passes):
            for start in range(0, X.shape[0], BLOCK):
                layer.partial_fit(X[start:start + BLOCK])
    return layer


def test_the_cluster_runs_numba_with_one_thread_per_worker(client):
    from sklearn_structlearn._threads import effective_n_jobs

    # dask sets OMP_NUM_THREADS=1 in its workers; n_jobs=None follows it (no
    # oversubscription of 2 processes x all cores)
    assert set(client.run(effective_n_jobs, None).values()) == {1}


@pytest.mark.parametrize("n_passes", [1, 2])
def test_fit_dask_equals_partial_fit_over_the_same_blocks(client, data, n_passes):
    X = da.from_array(data, chunks=(BLOCK, 8))  # column chunks are merged
    layer = make_layer()
    assert fit_dask(layer, X, n_passes=n_passes) is layer
    reference = partial_fit_in_memory(data, n_passes)
    assert layer.n_iter_ == reference.n_iter_ == n_passes * N_BLOCKS
    # workers run 1 BLAS/Numba thread, this process 2: equal up to rounding
    assert_allclose(layer.components_, reference.components_, rtol=1e-9, atol=1e-12)
    assert_array_equal(layer.connectivity_, reference.connectivity_)
    assert_allclose(layer.objective_history_, reference.objective_history_, rtol=1e-9)


def test_transform_dask_equals_transform(client, data):
    layer = partial_fit_in_memory(data)
    for dtype in (np.float64, np.float32):
        Xd = data.astype(dtype)
        X = da.from_array(Xd, chunks=(BLOCK, 16))
        Z = transform_dask(layer, X)
        assert Z.shape == (data.shape[0], layer.n_groups_)  # lazy shape is right
        assert Z.dtype == dtype
        computed = Z.compute()
        assert computed.dtype == dtype
        assert_allclose(computed, layer.transform(Xd), rtol=1e-6 if dtype == np.float32
                        else 1e-12, atol=1e-6 if dtype == np.float32 else 1e-12)
    codes = transform_dask(layer, da.from_array(data, chunks=(BLOCK, 16)), method="encode")
    assert codes.shape == (data.shape[0], 8)
    assert_allclose(codes.compute(), layer.encode(data), atol=1e-12)


def test_dask_ml_incremental_and_parallel_post_fit(client, data):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X = da.from_array(data, chunks=(BLOCK, 16))
    # a transformer has no score method: Incremental needs an explicit scorer; blocks are
    # shuffled unless told otherwise
    inc = wrappers.Incremental(make_layer(), scoring=lambda est, X, y=None: 0.0,
                               shuffle_blocks=False)
    inc.fit(X)
    reference = partial_fit_in_memory(data)
    assert_allclose(inc.estimator_.components_, reference.components_, rtol=1e-9,
                    atol=1e-12)
    post = wrappers.ParallelPostFit(reference)
    # the values are right (its lazy shape is not: it assumes n_outputs == n_features)
    assert_allclose(np.asarray(post.transform(X).compute()), reference.transform(data),
                    atol=1e-12)


def test_map_blocks_by_hand(client, data):
    layer = partial_fit_in_memory(data)
    X = da.from_array(data, chunks=(BLOCK, 16))
    Z = X.map_blocks(layer.transform, chunks=(X.chunks[0], (layer.n_groups_,)),
                     dtype=X.dtype)
    assert_allclose(Z.compute(), layer.transform(data), atol=1e-12)


def test_fit_dask_of_the_deep_learner_equals_fit_stream(client):
    from sklearn_structlearn.datasets import load_digits_images

    X, _ = load_digits_images()
    X = X[:600]
    params = dict(max_depth=2, n_components=16, group_size=4, depth_tol=-np.inf,
                  random_state=0)
    streamed = DeepStructureLearner(**params).fit_stream(np.array_split(X, 6), n_passes=1,
                                                         n_held=300)
    dasked = fit_dask(DeepStructureLearner(**params), da.from_array(X, chunks=(100, 64)),
                      n_passes=1, n_held=300)
    assert dasked.n_layers_ == streamed.n_layers_ == 2
    assert dasked.n_samples_seen_ == 600
    for a, b in zip(dasked.layers_, streamed.layers_):
        assert_array_equal(a.components_, b.components_)
    # float32 (the digits' dtype): BLAS rounds a float32 product of a 100-row block
    # differently from the same rows in a 600-row one (OpenBLAS picks its kernel by the
    # shape); through the whitening and two sparse codes that is a few 1e-6 of the outputs'
    # scale, the size of float32 rounding itself (float32 and float64 inputs give outputs
    # about as far apart). A block handled wrongly (say, whitened with its own mean) is off by
    # far more than 1e-5 of the scale.
    Z = transform_dask(dasked, da.from_array(X, chunks=(100, 64))).compute()
    reference = streamed.transform(X)
    assert Z.dtype == reference.dtype == np.float32
    assert_allclose(Z, reference, rtol=0, atol=1e-5 * np.abs(reference).max())
    # float64 products round the same way for any block of rows: equal to rounding
    X64 = X.astype(np.float64)
    reference = streamed.transform(X64)
    Z = transform_dask(dasked, da.from_array(X64, chunks=(100, 64))).compute()
    assert_allclose(Z, reference, rtol=0, atol=1e-12 * np.abs(reference).max())


def test_bad_inputs(client, data):
    with pytest.raises(TypeError, match="dask.array"):
        fit_dask(make_layer(), data)
    with pytest.raises(ValueError, match="n_passes"):
        fit_dask(make_layer(), da.from_array(data, chunks=(BLOCK, 16)), n_passes=0)
    with pytest.raises(TypeError, match="fit_stream"):
        fit_dask(make_layer(), da.from_array(data, chunks=(BLOCK, 16)), n_held=10)
    with pytest.raises(ValueError, match="method"):
        transform_dask(partial_fit_in_memory(data), da.from_array(data, chunks=(BLOCK, 16)),
                       method="predict")
