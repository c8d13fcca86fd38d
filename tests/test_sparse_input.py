"""Inputs: scipy.sparse CSR/CSC (never densified whole), pandas in and out, float32 kept."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from sklearn_structlearn import (
    DeepStructureLearner,
    GroupSparseCodingLayer,
    alpha_max,
    group_sparse_encode,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

PARAMS = dict(n_components=12, group_size=3, alpha="auto", connectivity_alpha="auto",
              max_iter=8, random_state=0)


@pytest.fixture(scope="module")
def sparse_data():
    """Bag-of-words-like data: non-negative counts, 5% non-zero."""
    X = sp.random(400, 60, density=0.05, format="csr", random_state=0,
                  data_rvs=lambda n: np.random.RandomState(1).poisson(3, n) + 1.0)
    return X


@pytest.fixture
def densified(monkeypatch):
    """Record the shape of every sparse block turned dense while the test runs."""
    shapes = []
    original = sp._compressed._cs_matrix.toarray

    def recording(self, *args, **kwargs):
        shapes.append(self.shape)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sp._compressed._cs_matrix, "toarray", recording)
    monkeypatch.setattr(sp._compressed._cs_matrix, "todense",
                        lambda self, *a, **k: pytest.fail("todense called"))
    return shapes


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_layer_on_sparse_equals_layer_on_dense(sparse_data, fmt, dtype):
    Xs = sparse_data.asformat(fmt).astype(dtype)
    Xd = Xs.toarray()
    on_sparse = GroupSparseCodingLayer(**PARAMS).fit(Xs)
    on_dense = GroupSparseCodingLayer(**PARAMS).fit(Xd)
    # float32: X @ D^T is rounded differently by the sparse product and by BLAS, and the
    # alternating minimisation carries the difference on (atoms have unit norm)
    tol = 1e-3 if dtype == np.float32 else 1e-10
    assert on_sparse.alpha_ == pytest.approx(on_dense.alpha_, rel=tol)
    assert_allclose(on_sparse.components_, on_dense.components_, atol=tol)
    Z = on_sparse.transform(Xs)
    assert Z.dtype == dtype
    # the outputs are in the data's units (up to ~100 here): the atoms' float32 difference
    # (<= 1e-3 above) carries over relative to them
    assert_allclose(Z, on_dense.transform(Xd), atol=tol, rtol=1e-4 if tol > 1e-9 else 1e-7)
    assert_allclose(on_sparse.encode(Xs), on_sparse.encode(Xd), atol=tol)
    # online: partial_fit over sparse batches == over the same dense batches
    a, b = GroupSparseCodingLayer(**PARAMS), GroupSparseCodingLayer(**PARAMS)
    for start in range(0, 400, 100):
        a.partial_fit(Xs[start:start + 100])
        b.partial_fit(Xd[start:start + 100])
    assert_allclose(a.components_, b.components_, atol=tol)
    assert_allclose(a.objective_history_, b.objective_history_, rtol=1e-4 if tol > 1e-9
                    else 1e-9)
    # batch_size (online fit over the rows of one sparse matrix)
    c = GroupSparseCodingLayer(batch_size=100, **PARAMS).fit(Xs)
    d = GroupSparseCodingLayer(batch_size=100, **PARAMS).fit(Xd)
    assert_allclose(c.components_, d.components_, atol=tol)


def test_sparse_input_is_never_densified_whole(sparse_data, densified):
    X = sp.vstack([sparse_data] * 25).tocsr()  # 10,000 rows
    layer = GroupSparseCodingLayer(**PARAMS).fit(X)
    # only small blocks of rows, whatever n_samples: the pool the initial atoms are drawn
    # from (at most 2048 rows), the "auto" alpha subsample (256) and the rows re-seeding
    # dead units (at most 1024)
    assert densified and max(rows for rows, _ in densified) <= 2048
    densified.clear()
    layer.transform(X)
    layer.partial_fit(X[:500])
    group_sparse_encode(X, layer.components_, alpha=layer.alpha_, group_size=3)
    alpha_max(X, layer.components_, group_size=3)
    assert max((rows for rows, _ in densified), default=0) <= 2048


def test_group_sparse_encode_sparse(sparse_data):
    rng = np.random.default_rng(0)
    D = rng.standard_normal((12, 60))
    Xd = sparse_data.toarray()
    for X in (sparse_data, sparse_data.tocsc(), sp.csr_array(sparse_data)):
        for alpha in (0.5, 0.0):
            assert_allclose(group_sparse_encode(X, D, alpha=alpha, group_size=3),
                            group_sparse_encode(Xd, D, alpha=alpha, group_size=3), atol=1e-10)
    init = group_sparse_encode(Xd, D, alpha=0.5, group_size=3)
    assert_allclose(group_sparse_encode(sparse_data, D, alpha=0.5, group_size=3, init=init),
                    init, atol=1e-8)
    assert alpha_max(sparse_data, D, group_size=3) == pytest.approx(alpha_max(Xd, D, 3))


def test_sparse_rejections_are_clear(sparse_data):
    with pytest.raises(TypeError, match="sparse.*centres the data.*fit_stream"):
        DeepStructureLearner(max_depth=1, n_components=8).fit(sparse_data)
    layer = GroupSparseCodingLayer(**PARAMS).fit(sparse_data)
    # other sparse formats are converted to CSR (sparse still), not refused
    assert_allclose(layer.transform(sparse_data.tocoo()), layer.transform(sparse_data))
    with pytest.raises(ValueError, match="features"):
        layer.transform(sparse_data[:, :10])


def test_pandas_in_and_out_and_float32(sparse_data):
    columns = [f"word_{j}" for j in range(60)]
    df = pd.DataFrame(sparse_data.toarray().astype(np.float32), columns=columns,
                      index=np.arange(400) + 1000)
    layer = GroupSparseCodingLayer(**PARAMS).set_output(transform="pandas")
    out = layer.fit_transform(df)
    assert isinstance(out, pd.DataFrame)
    assert_array_equal(out.index, df.index)
    assert list(out.columns) == list(layer.get_feature_names_out())
    assert_array_equal(layer.feature_names_in_, columns)
    assert (out.dtypes == np.float32).all()
    # partial_fit keeps and checks the names, streaming DataFrames
    online = GroupSparseCodingLayer(**PARAMS).set_output(transform="pandas")
    for start in range(0, 400, 100):
        online.partial_fit(df.iloc[start:start + 100])
    assert_array_equal(online.feature_names_in_, columns)
    assert online.transform(df.iloc[:5]).shape == (5, 4)
    with pytest.raises(ValueError, match="feature names"):
        online.partial_fit(df.iloc[:50, ::-1])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        online.transform(df.iloc[:3])  # same names: no warning
    # the deep learner, pandas in and out, float32 kept
    learner = DeepStructureLearner(max_depth=1, n_components=12, group_size=3,
                                   preprocessing="standardize", max_iter=3,
                                   random_state=0).set_output(transform="pandas")
    Z = learner.fit_transform(df)
    assert isinstance(Z, pd.DataFrame) and (Z.dtypes == np.float32).all()
    assert_array_equal(learner.feature_names_in_, columns)


def test_sparse_tag_is_set():
    assert GroupSparseCodingLayer().__sklearn_tags__().input_tags.sparse
    assert not DeepStructureLearner().__sklearn_tags__().input_tags.sparse


def test_convergence_warning_filter_is_the_only_one_needed(sparse_data):
    # a sparse fit emits nothing but (possibly) ConvergenceWarning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        GroupSparseCodingLayer(**PARAMS).fit(sparse_data)


@pytest.mark.parametrize("density", [0.02, 0.5])
@pytest.mark.parametrize("x_format", ["dense", "csr"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_code_statistics_equal_the_dense_products(density, x_format, dtype):
    # the dictionary statistics A^T A and A^T X are computed from sparse codes when the
    # codes are mostly zeros (the usual case): they must equal the plain dense products
    from sklearn_structlearn._sparse import code_statistics

    rng = np.random.default_rng(0)
    codes = ((rng.random((300, 40)) < density) * rng.random((300, 40))).astype(dtype)
    X_dense = rng.standard_normal((300, 25)).astype(dtype)
    X = X_dense if x_format == "dense" else sp.csr_matrix(X_dense)
    AtA, AtX = code_statistics(codes, X)
    A64 = codes.astype(np.float64)
    assert AtA.dtype == AtX.dtype == np.float64
    assert isinstance(AtA, np.ndarray) and isinstance(AtX, np.ndarray)
    assert_allclose(AtA, A64.T @ A64, rtol=1e-12, atol=1e-12)
    assert_allclose(AtX, A64.T @ X_dense.astype(np.float64), rtol=1e-6, atol=1e-6)
