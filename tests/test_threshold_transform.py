"""transform_algorithm="threshold": the feed-forward codes prox(X D^T) of a learned layer.

Checked against a slow per-row, per-group loop of the formula, against the objective's
codes where one proximal step is exact (orthonormal atoms), through the stack of
``DeepStructureLearner`` and through the torch / NumPy exports.
"""

import copy

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from sklearn_structlearn import DeepStructureLearner, GroupSparseCodingLayer, group_sparse_encode
from sklearn_structlearn._groups import threshold_codes
from sklearn_structlearn.export import LayerSpec, reference_forward

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def slow_threshold_codes(X, D, alpha, group_size, positive):
    """The group soft-threshold of x D^T, one row and one group at a time."""
    codes = np.zeros((X.shape[0], D.shape[0]))
    for i, x in enumerate(np.asarray(X, dtype=np.float64)):
        z = D.astype(np.float64) @ x
        if positive:
            z = np.maximum(z, 0.0)
        for start in range(0, D.shape[0], group_size):
            zg = z[start:start + group_size]
            norm = np.sqrt(np.sum(zg ** 2))
            if norm > alpha:
                codes[i, start:start + group_size] = zg * (1.0 - alpha / norm)
    return codes


@pytest.fixture(scope="module")
def digits():
    return load_digits().data[:300] / 16.0


@pytest.fixture(scope="module")
def fitted_layer(digits):
    return GroupSparseCodingLayer(n_components=16, group_size=2, alpha=0.5, max_iter=5,
                                  random_state=0).fit(digits)


@pytest.mark.parametrize("group_size", [1, 2, 4])
@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sparse", [False, True])
def test_threshold_codes_match_the_slow_loop(group_size, positive, dtype, sparse):
    rng = np.random.default_rng(group_size + 2 * positive)
    X = rng.normal(size=(25, 9)).astype(dtype)
    X[rng.random(X.shape) < 0.4] = 0.0
    D = rng.normal(size=(8, 9))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    alpha = 0.8
    codes = threshold_codes(sp.csr_matrix(X) if sparse else X, D.astype(dtype), alpha,
                            group_size, positive)
    assert codes.dtype == dtype and codes.shape == (25, 8)
    expected = slow_threshold_codes(X, D.astype(dtype), alpha, group_size, positive)
    # some groups are shrunk to zero, some kept: the test sees both branches
    assert 0 < np.mean(expected == 0) < 1
    np.testing.assert_allclose(codes, expected, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-5 if dtype == np.float32 else 1e-12)


def test_threshold_codes_by_blocks_of_rows(monkeypatch):
    # rows are coded in blocks of bounded memory: blocks of 3 rows (25 rows: a last block
    # of one) give the same codes as one block (up to BLAS's rounding of other shapes)
    from sklearn_structlearn import _groups

    rng = np.random.default_rng(7)
    X, D = rng.normal(size=(25, 9)), rng.normal(size=(8, 9))
    whole = threshold_codes(X, D, 0.5, 2, True)
    monkeypatch.setattr(_groups, "THRESHOLD_BLOCK_BYTES", 3 * 8 * 8)
    np.testing.assert_allclose(threshold_codes(X, D, 0.5, 2, True), whole, atol=1e-13)
    np.testing.assert_allclose(threshold_codes(sp.csr_matrix(X), D, 0.5, 2, True), whole,
                               atol=1e-13)
    np.testing.assert_allclose(whole, slow_threshold_codes(X, D, 0.5, 2, True), atol=1e-12)


@pytest.mark.parametrize("group_size", [1, 3])
@pytest.mark.parametrize("positive", [False, True])
def test_one_proximal_step_is_exact_on_orthonormal_atoms(group_size, positive):
    # with D D^T = I the objective 1/2||x - D^T a||^2 + alpha Omega(a) is, up to a
    # constant, 1/2||a - D x||^2 + alpha Omega(a): its minimiser is prox(D x)
    rng = np.random.default_rng(group_size)
    Q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    D = Q[:9]  # 9 orthonormal atoms in 12 dimensions
    X = rng.normal(size=(40, 12))
    alpha = 0.7
    exact = group_sparse_encode(X, D, alpha=alpha, group_size=group_size, positive=positive,
                                tol=1e-12, max_iter=5000)
    np.testing.assert_allclose(threshold_codes(X, D, alpha, group_size, positive), exact,
                               atol=1e-8)


def test_layer_threshold_transform(fitted_layer, digits):
    layer = copy.deepcopy(fitted_layer).set_params(transform_algorithm="threshold")
    D = layer.components_
    expected = slow_threshold_codes(digits[:50], D, layer.alpha_, 2, positive=False)
    np.testing.assert_allclose(layer.encode(digits[:50]), expected, atol=1e-12)
    pooled = np.linalg.norm(expected.reshape(50, 8, 2), axis=2)
    np.testing.assert_allclose(layer.transform(digits[:50]), pooled, atol=1e-12)
    # denser than the objective's codes: coherent atoms all keep their codes
    lasso = fitted_layer.encode(digits[:50])
    assert np.mean(expected != 0) > np.mean(lasso != 0)
    # and back: the parameter is read at transform time
    layer.set_params(transform_algorithm="lasso")
    np.testing.assert_array_equal(layer.encode(digits[:50]), lasso)


def test_layer_fit_does_not_depend_on_the_transform_algorithm(digits):
    params = dict(n_components=16, alpha=0.5, max_iter=4, random_state=0)
    a = GroupSparseCodingLayer(**params).fit(digits)
    b = GroupSparseCodingLayer(transform_algorithm="threshold", **params).fit(digits)
    np.testing.assert_array_equal(a.components_, b.components_)
    np.testing.assert_array_equal(b.fit_transform(digits), b.transform(digits))


def test_learner_stacks_threshold_outputs(digits):
    learner = DeepStructureLearner(max_depth=2, n_components=[32, 16], depth_tol=-np.inf,
                                   transform_algorithm="threshold", max_iter=3,
                                   random_state=0).fit(digits)
    assert learner.n_layers_ == 2
    assert all(layer.transform_algorithm == "threshold" for layer in learner.layers_)
    Z = learner._preprocess(digits[:40])
    for layer in learner.layers_:
        codes = slow_threshold_codes(Z, layer.components_, layer.alpha_, 1, positive=True)
        Z = np.abs(codes)  # groups of one unit, l2 pooling: the magnitude
    np.testing.assert_allclose(learner.transform(digits[:40]), Z, atol=1e-10)
    # what the depth rule measured is what transform gives
    np.testing.assert_allclose(learner.fit_transform(digits), learner.transform(digits),
                               atol=1e-10)


def test_learner_transform_algorithm_set_after_fit_is_refused(digits):
    learner = DeepStructureLearner(n_components=16, max_iter=2, transform_algorithm="lasso",
                                   random_state=0).fit(digits)
    learner.set_params(transform_algorithm="threshold")
    with pytest.raises(ValueError, match=r"transform_algorithm='threshold' was set after "
                                         r"fit, but the layers were fitted with "
                                         r"transform_algorithm='lasso'"):
        learner.transform(digits)
    learner.set_params(transform_algorithm="omp")
    with pytest.raises(ValueError, match=r"transform_algorithm.*'omp'"):
        learner.get_feature_names_out()


@pytest.mark.parametrize("estimator", [GroupSparseCodingLayer, DeepStructureLearner])
def test_unknown_transform_algorithm_is_refused_before_fitting(estimator, digits):
    with pytest.raises(ValueError, match=r"transform_algorithm.*'omp'"):
        estimator(transform_algorithm="omp").fit(digits)


def test_exports_reproduce_the_threshold_transform(digits):
    torch = pytest.importorskip("torch")
    learner = DeepStructureLearner(max_depth=2, n_components=[32, 16], group_size=[2, 1],
                                   depth_tol=-np.inf, transform_algorithm="threshold",
                                   max_iter=3, random_state=0).fit(digits)
    expected = learner.transform(digits[:30])
    net = learner.to_torch(mode="exact", dtype=torch.float64)
    np.testing.assert_allclose(net(torch.from_numpy(digits[:30])).detach().numpy(), expected,
                               atol=1e-10)
    from sklearn_structlearn.export import layer_specs_from_estimator

    specs, pre = layer_specs_from_estimator(learner)
    assert [spec.transform_algorithm for spec in specs] == ["threshold", "threshold"]
    np.testing.assert_allclose(reference_forward(digits[:30], specs, preprocessing=pre),
                               expected, atol=1e-10)


def test_layer_spec_refuses_an_unknown_transform_algorithm():
    with pytest.raises(ValueError, match=r"transform_algorithm must be one of"):
        LayerSpec(np.eye(2), transform_algorithm="omp")


def test_no_convergence_warning_from_the_threshold_transform(fitted_layer, digits):
    import warnings

    layer = copy.deepcopy(fitted_layer).set_params(transform_algorithm="threshold",
                                                   transform_max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        layer.transform(digits)  # nothing iterates: no solver, nothing to warn about


def test_the_default_transform_keeps_more_of_the_input_than_the_lasso_codes(digits):
    # why "threshold" is the learner's default: a held-out linear read-out of its
    # outputs recovers more of the preprocessed input (the depth rule's measure)
    decodable = {
        algorithm: DeepStructureLearner(n_components=128, max_iter=3,
                                        transform_algorithm=algorithm,
                                        random_state=0).fit(digits).decodable_variances_[0]
        for algorithm in ("lasso", "threshold")}
    assert DeepStructureLearner().transform_algorithm == "threshold"
    assert decodable["threshold"] > decodable["lasso"] + 0.01, decodable  # 0.83 vs 0.81
