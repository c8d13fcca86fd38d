"""Streaming: partial_fit against fit, DeepStructureLearner.fit_stream, memory that does
not grow with the number of rows seen, and the stream's building blocks."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

from sklearn_structlearn import DeepStructureLearner, GroupSparseCodingLayer, group_sparse_encode
from sklearn_structlearn._streaming import Reservoir, RunningMoments, batch_source
from sklearn_structlearn.datasets import load_digits_images, make_planted_structure
from sklearn_structlearn.objective import layer_objective

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

LAYER = dict(n_components=8, group_size=2, alpha=0.2, connectivity_alpha=0.005, random_state=0)


@pytest.fixture(scope="module")
def planted():
    return make_planted_structure(n_samples=300, n_features=16, n_components=8, group_size=2,
                                  fan_in=4, active_groups=1, noise=0.01, random_state=0).X


@pytest.fixture(scope="module")
def digits():
    X, _ = load_digits_images()
    return X[:600]


def objective(X, dictionary):
    codes = group_sparse_encode(X, dictionary, alpha=LAYER["alpha"], group_size=2)
    return layer_objective(X, dictionary, codes, LAYER["alpha"], LAYER["connectivity_alpha"], 2)


def all_array_sizes(estimator):
    """{attribute: shape} of every array held by the estimator (running statistics too)."""
    sizes = {}
    for name, value in vars(estimator).items():
        if isinstance(value, np.ndarray):
            sizes[name] = value.shape
        elif isinstance(value, dict):
            sizes.update({f"{name}[{k}]": v.shape for k, v in value.items()
                          if isinstance(v, np.ndarray)})
    return sizes


# --------------------------------------------------------------------------- layer
def test_partial_fit_on_the_whole_batch_approaches_fit(planted):
    X = planted
    fitted = GroupSparseCodingLayer(max_iter=100, tol=1e-8, **LAYER).fit(X)
    online = GroupSparseCodingLayer(**LAYER)
    objectives = []
    for step in range(1, 41):
        online.partial_fit(X)
        if step in (1, 5, 20, 40):
            objectives.append(objective(X, online.components_))
    # every checkpoint is better than the last, and the end is as good as the batch fit
    # (up to the local minimum each one lands in)
    assert np.all(np.diff(objectives) < 0), objectives
    assert objectives[-1] <= 1.1 * objective(X, fitted.components_)
    # the surrogate of the last step is the objective of the codes it averaged: close
    assert online.objective_history_[-1] == pytest.approx(objectives[-1], rel=0.1)


def test_memory_does_not_grow_with_rows_seen(planted):
    small = GroupSparseCodingLayer(**LAYER)
    large = GroupSparseCodingLayer(**LAYER)
    rng = np.random.default_rng(0)
    for _ in range(5):
        small.partial_fit(planted[rng.integers(0, 300, 20)])
        large.partial_fit(np.repeat(planted, 10, axis=0))  # 3000 rows a batch
    # the same arrays, of the same sizes, after 100 or 15,000 rows
    assert all_array_sizes(small) == all_array_sizes(large)
    assert all(3000 not in shape and 20 not in shape for shape in all_array_sizes(large).values())
    # the only things that grow are the per-*batch* histories, by one number a batch
    before = all_array_sizes(large), len(large.objective_history_), len(large.n_reseeded_)
    large.partial_fit(planted)
    assert all_array_sizes(large) == before[0]
    assert (len(large.objective_history_), len(large.n_reseeded_)) == (before[1] + 1,
                                                                       before[2] + 1)


def test_partial_fit_docstring_documents_the_forgetting_schedule():
    doc = GroupSparseCodingLayer.partial_fit.__doc__
    assert "Notes" in doc and "t^{-0.8}" in doc and "Memory" in doc


# --------------------------------------------------------------------------- fit_stream
@pytest.mark.parametrize("preprocessing", ["zca", "standardize", None])
def test_stream_preprocessing_equals_fit(digits, preprocessing):
    params = dict(max_depth=1, n_components=16, preprocessing=preprocessing, max_iter=3,
                  random_state=0)
    fitted = DeepStructureLearner(**params).fit(digits)
    # uneven batches: the merged moments must not depend on how the stream is cut
    cuts = [0, 7, 150, 151, 400, 600]
    streamed = DeepStructureLearner(**params).fit_stream(
        [digits[a:b] for a, b in zip(cuts[:-1], cuts[1:])], n_passes=1, n_held=100)
    assert_allclose(streamed.preprocess_mean_, fitted.preprocess_mean_, atol=1e-6)
    if preprocessing is None:
        assert streamed.preprocess_matrix_ is None
    else:
        assert_allclose(streamed.preprocess_matrix_, fitted.preprocess_matrix_, rtol=1e-6,
                        atol=1e-8)


def test_fit_stream_learns_a_layer_as_good_as_fit(digits):
    # the former regime given explicitly (signed codes, a sparser code -- alpha 0.15 of the
    # input scale -- and the connectivity
    # penalty at its former ratio 0.13): the sparse connectivity and the 5% objective
    # bound below were established there. At the issue-12 "auto" penalties (90% of the
    # variance explained, ratio 0.04) the streamed layer's objective is 13% above fit's
    # with these 3 passes, and most connections stay on 64 whitened pixels. The objective
    # is the one of the codes that minimise it: the layers code with the lasso.
    params = dict(max_depth=2, n_components=32, group_size=4, random_state=0, max_iter=30,
                  positive_code=False, penalty_scale="relative", alpha=0.15,
                  connectivity_alpha=0.13, depth_criterion="redundancy", depth_tol=0.02,
                  transform_algorithm="lasso")
    fitted = DeepStructureLearner(**params).fit(digits)
    # n_held >= rows: the held sample is the whole stream, the penalties are fit's
    streamed = DeepStructureLearner(**params).fit_stream(np.array_split(digits, 6), n_passes=3,
                                                         n_held=600)
    assert streamed.n_samples_seen_ == 600 and streamed.n_batches_ == 6
    assert 1 <= streamed.n_layers_ <= 2
    Z = fitted._preprocess(digits)
    layer_f, layer_s = fitted.layers_[0], streamed.layers_[0]
    assert layer_s.alpha_ == layer_f.alpha_
    assert layer_s.n_iter_ == 1 + 3 * 6  # the held sample, then 3 passes of 6 batches

    def layer_obj(layer):
        return layer_objective(Z, layer.components_, layer.encode(Z), layer.alpha_,
                               layer.connectivity_alpha_, layer.group_size)

    assert layer_obj(layer_s) <= 1.05 * layer_obj(layer_f)
    # a learned structure: sparse connectivity, most units alive
    assert 0.05 < layer_s.connectivity_.mean() < 0.9
    assert np.mean(np.any(layer_s.encode(Z) != 0, axis=0)) > 0.8
    out = streamed.transform(digits)
    assert out.shape == (600, streamed.layers_[-1].n_groups_)
    assert len(streamed.entropies_) == streamed.n_layers_ + 1
    assert len(streamed.structure_) == streamed.n_layers_


def test_fit_stream_sources_and_depth_on_the_held_sample(digits):
    params = dict(max_depth=2, n_components=16, depth_tol=-np.inf, max_iter=5, random_state=0)
    batches = np.array_split(digits, 5)

    def generator():
        yield from batches

    from_list = DeepStructureLearner(**params).fit_stream(batches, n_passes=1, n_held=128)
    from_callable = DeepStructureLearner(**params).fit_stream(generator, n_passes=1,
                                                              n_held=128)
    assert from_list.n_layers_ == 2  # depth_tol=-inf stacks max_depth
    for a, b in zip(from_list.layers_, from_callable.layers_):
        assert_array_equal(a.components_, b.components_)
    # the depth rule ran on the held sample: a uniform sample of n_held rows
    assert from_list.layers_[0].n_iter_ == 1 + 5
    with pytest.raises(TypeError, match="one-shot iterator.*lambda"):
        DeepStructureLearner(**params).fit_stream(generator())
    with pytest.raises(TypeError, match="iterating over an array yields its rows"):
        DeepStructureLearner(**params).fit_stream(digits)
    with pytest.raises(ValueError, match="at least 2 rows"):
        DeepStructureLearner(**params).fit_stream([digits[:1]])
    with pytest.raises(ValueError, match="features"):
        DeepStructureLearner(**params).fit_stream([digits[:50], digits[50:100, :10]])
    # bad parameters fail on the first batch, not after a pass over the stream
    read = []

    def counting():
        for batch in batches:
            read.append(batch)
            yield batch

    with pytest.raises(ValueError, match="multiple of group_size"):
        DeepStructureLearner(n_components=7, group_size=2).fit_stream(counting)
    assert len(read) == 1


def test_fit_stream_keeps_dtype_names_and_accepts_sparse_batches(digits):
    params = dict(max_depth=1, n_components=16, max_iter=5, random_state=0)
    columns = [f"px{j}" for j in range(64)]
    frames = [pd.DataFrame(b, columns=columns) for b in np.array_split(digits, 4)]
    learner = DeepStructureLearner(**params).set_output(transform="pandas")
    learner.fit_stream(frames, n_passes=1, n_held=200)
    assert_array_equal(learner.feature_names_in_, columns)
    out = learner.transform(frames[0])
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(
        learner.get_feature_names_out())
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "fitted with feature names" noise
        learner.set_output(transform="default").transform(frames[1])

    batches32 = [b.astype(np.float32) for b in np.array_split(digits, 4)]
    learner32 = DeepStructureLearner(**params).fit_stream(batches32, n_passes=1, n_held=200)
    assert learner32.transform(batches32[0]).dtype == np.float32
    dense = DeepStructureLearner(**params).fit_stream(np.array_split(digits, 4), n_passes=1,
                                                      n_held=200)
    sparse = DeepStructureLearner(**params).fit_stream(
        [sp.csr_matrix(b) for b in np.array_split(digits, 4)], n_passes=1, n_held=200)
    assert_allclose(sparse.layers_[0].components_, dense.layers_[0].components_, atol=1e-10)


def test_fit_stream_memory_does_not_grow_with_the_stream(digits):
    params = dict(max_depth=1, n_components=16, max_iter=5, random_state=0)
    short = DeepStructureLearner(**params).fit_stream(np.array_split(digits[:300], 3),
                                                      n_passes=1, n_held=100)
    long = DeepStructureLearner(**params).fit_stream(np.array_split(digits, 6), n_passes=1,
                                                     n_held=100)
    assert all_array_sizes(short) == all_array_sizes(long)
    for a, b in zip(short.layers_, long.layers_):
        assert all_array_sizes(a) == all_array_sizes(b)


def test_in_memory_fit_is_unchanged_by_streaming(digits):
    params = dict(max_depth=1, n_components=16, max_iter=5, random_state=0)
    learner = DeepStructureLearner(**params)
    learner.fit_stream(np.array_split(digits, 3), n_passes=1, n_held=100)
    refit = learner.fit(digits)
    fresh = DeepStructureLearner(**params).fit(digits)
    assert_array_equal(refit.layers_[0].components_, fresh.layers_[0].components_)
    assert_array_equal(refit.entropies_, fresh.entropies_)


# --------------------------------------------------------------------------- building blocks
@pytest.mark.parametrize("full", [True, False])
def test_running_moments_equal_the_whole_data(full):
    rng = np.random.default_rng(0)
    X = rng.normal(loc=1e3, scale=[1.0, 2.0, 0.5], size=(500, 3))  # far from 0: cancellation
    moments = RunningMoments(3, full=full)
    for a, b in [(0, 1), (1, 50), (50, 50), (50, 333), (333, 500)]:
        moments.update(X[a:b])
    assert moments.n == 500
    assert_allclose(moments.mean, X.mean(axis=0), rtol=1e-12)
    expected = np.cov(X.T, bias=True) if full else X.var(axis=0)
    assert_allclose(moments.second_moment(), expected, rtol=1e-9)


def test_reservoir_is_a_uniform_sample():
    n, size, repeats = 200, 20, 400
    counts = np.zeros(n)
    rows = np.arange(n, dtype=float)[:, None]
    for seed in range(repeats):
        reservoir = Reservoir(size, np.random.RandomState(seed))
        for a, b in [(0, 5), (5, 90), (90, 91), (91, 200)]:
            reservoir.update(rows[a:b])
        sample = reservoir.sample()[:, 0]
        assert len(np.unique(sample)) == size  # without replacement
        counts[sample.astype(int)] += 1
    # every row is kept with probability size / n = 0.1: 40 times in 400 draws expected,
    # binomial sd 6; early and late rows alike (the first rows fill the reservoir)
    assert abs(counts[:100].mean() - 40) < 3 and abs(counts[100:].mean() - 40) < 3
    assert counts.min() > 15 and counts.max() < 70


def test_batch_source():
    batches = [np.zeros((2, 3))] * 3
    fresh = batch_source(batches, 5)
    assert len(list(fresh())) == len(list(fresh())) == 3
    assert len(list(batch_source(lambda: iter(batches), 5)())) == 3
    assert len(list(batch_source(iter(batches), 1)())) == 3  # one pass: fine
    with pytest.raises(TypeError, match="callable must return an iterable"):
        list(batch_source(lambda: 3, 2)())
    with pytest.raises(TypeError, match="iterable of batches"):
        batch_source(3, 2)
