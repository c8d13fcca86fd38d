"""Fits are transactions: a fit that fails or is interrupted (an exception, Ctrl-C) leaves
the estimator exactly as it was before the call -- or unfitted -- never half-updated.

The failure is injected in the middle of the work by making the dictionary solver raise
on its n-th call (every layer of every estimator goes through it). "Exactly as before" is
checked on the pickled state (every attribute, bitwise) and on the outputs.
"""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from sklearn_structlearn import DeepStructureLearner, GroupSparseCodingLayer
from sklearn_structlearn import layer as layer_module
from sklearn_structlearn.preprocessing import Preprocessor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


class Injected(Exception):
    pass


@pytest.fixture
def fail_at(monkeypatch):
    """``fail_at(n, exc)``: the n-th call (1-based) of the dictionary solver raises ``exc``."""
    real = layer_module.update_dictionary

    def install(n, exc=KeyboardInterrupt):
        calls = {"n": 0}

        def failing(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == n:
                raise exc()
            return real(*args, **kwargs)

        monkeypatch.setattr(layer_module, "update_dictionary", failing)
        return calls

    yield install
    monkeypatch.setattr(layer_module, "update_dictionary", real)


def _data(n_features=12, n_samples=80, seed=0):
    rng = np.random.RandomState(seed)
    return np.abs(rng.standard_normal((n_samples, n_features)))


def _layer(**params):
    return GroupSparseCodingLayer(**{"n_components": 8, "group_size": 2, "alpha": 0.1,
                                     "max_iter": 4, "random_state": 0, **params})


def _learner(**params):
    return DeepStructureLearner(**{"max_depth": 2, "n_components": 8, "group_size": 2,
                                   "max_iter": 3, "depth_tol": -np.inf, "random_state": 0,
                                   **params})


def _unfitted(estimator):
    assert set(vars(estimator)) == set(estimator.get_params(deep=False))
    with pytest.raises(NotFittedError):
        check_is_fitted(estimator)


# --------------------------------------------------------------------------- the layer
@pytest.mark.parametrize("exc", [KeyboardInterrupt, Injected])
@pytest.mark.parametrize("method", ["fit", "partial_fit", "fit_transform"])
@pytest.mark.parametrize("batch_size", [None, 20])
def test_interrupted_first_fit_leaves_the_layer_unfitted(fail_at, exc, method, batch_size):
    # regression: a layer interrupted mid-fit passed check_is_fitted and transformed
    layer = _layer(batch_size=batch_size)
    fail_at(1 if method == "partial_fit" else 2, exc)
    with pytest.raises(exc):
        getattr(layer, method)(_data())
    _unfitted(layer)


@pytest.mark.parametrize("exc", [KeyboardInterrupt, Injected])
@pytest.mark.parametrize("method", ["fit", "fit_transform"])
def test_interrupted_refit_leaves_the_layer_as_it_was(fail_at, exc, method):
    X_old, X_new = _data(12), _data(10, seed=1)
    layer = _layer().fit(X_old)
    before, outputs = pickle.dumps(layer), layer.transform(X_old)
    fail_at(3, exc)
    with pytest.raises(exc):
        getattr(layer, method)(X_new)
    assert pickle.dumps(layer) == before
    assert_array_equal(layer.transform(X_old), outputs)


def test_refit_interrupted_in_its_transform_leaves_the_layer_as_it_was(monkeypatch):
    # fit_transform: the fit completed, its transform is interrupted
    X_old, X_new = _data(12), _data(12, seed=1)
    layer = _layer().fit(X_old)
    before = pickle.dumps(layer)
    real = GroupSparseCodingLayer.transform

    def interrupted(self, X):
        raise KeyboardInterrupt

    monkeypatch.setattr(GroupSparseCodingLayer, "transform", interrupted)
    with pytest.raises(KeyboardInterrupt):
        layer.fit_transform(X_new)
    monkeypatch.setattr(GroupSparseCodingLayer, "transform", real)
    assert pickle.dumps(layer) == before


def test_interrupted_partial_fit_changes_nothing(fail_at):
    # the running statistics, histories, batch count and the layer's own random stream are
    # untouched: the next partial_fit continues exactly as if the interrupted call never was
    batches = [_data(seed=s) for s in range(3)]
    reference = _layer()
    for batch in batches:
        reference.partial_fit(batch)

    layer = _layer().partial_fit(batches[0]).partial_fit(batches[1])
    before = pickle.dumps(layer)
    fail_at(1)
    with pytest.raises(KeyboardInterrupt):
        layer.partial_fit(batches[2])
    assert pickle.dumps(layer) == before
    layer.partial_fit(batches[2])
    assert pickle.dumps(layer) == pickle.dumps(reference)


def test_refused_refit_leaves_the_layer_as_it_was():
    # regression: the new feature names were set before the data were refused
    X = pd.DataFrame(_data(12), columns=[f"f{j}" for j in range(12)])
    layer = _layer().fit(X)
    before = pickle.dumps(layer)
    bad = pd.DataFrame(_data(12), columns=[f"g{j}" for j in range(12)])
    bad.iloc[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        layer.fit(bad)
    assert pickle.dumps(layer) == before
    with pytest.raises(ValueError, match="multiple of group_size"):
        layer.set_params(n_components=7).fit(_data(10))
    layer.set_params(n_components=8)
    assert pickle.dumps(layer) == before


def test_a_random_state_instance_is_rewound(fail_at):
    rng = np.random.RandomState(0)
    layer = _layer(random_state=rng)
    state = rng.get_state()
    fail_at(2)
    with pytest.raises(KeyboardInterrupt):
        layer.fit(_data())
    after = rng.get_state()
    assert all(np.array_equal(a, b) for a, b in zip(state, after))
    assert layer.random_state is rng  # parameters are the caller's objects, not copies


# --------------------------------------------------------------------------- the learner
@pytest.mark.parametrize("exc", [KeyboardInterrupt, Injected])
@pytest.mark.parametrize("method", ["fit", "fit_transform", "fit_stream"])
def test_interrupted_first_learner_fit_leaves_it_unfitted(fail_at, exc, method):
    learner = _learner()
    fail_at(2, exc)
    X = _data(12)
    with pytest.raises(exc):
        if method == "fit_stream":
            learner.fit_stream(np.array_split(X, 4), n_passes=1, n_held=40)
        else:
            getattr(learner, method)(X)
    _unfitted(learner)


@pytest.mark.parametrize("exc", [KeyboardInterrupt, Injected])
@pytest.mark.parametrize("method", ["fit", "fit_transform", "fit_stream"])
@pytest.mark.parametrize("fail_in", ["first layer", "second layer"])
def test_interrupted_learner_refit_leaves_it_as_it_was(fail_at, exc, method, fail_in):
    # regression: n_features_in_ and the preprocessing were replaced, layers_ kept: then
    # transform raised a raw NumPy error, or (Ctrl-C) returned different outputs
    X_old, X_new = _data(12), _data(10, seed=1)
    learner = _learner().fit(X_old)
    before, outputs = pickle.dumps(learner), learner.transform(X_old)
    # fit: 3 dictionary updates per layer; fit_stream: 1 + 4 batches per layer
    per_layer = 5 if method == "fit_stream" else 3
    calls = fail_at(2 if fail_in == "first layer" else per_layer + 2, exc)
    with pytest.raises(exc):
        if method == "fit_stream":
            learner.fit_stream(np.array_split(X_new, 4), n_passes=1, n_held=40)
        else:
            getattr(learner, method)(X_new)
    assert calls["n"] == (2 if fail_in == "first layer" else per_layer + 2)
    assert pickle.dumps(learner) == before
    assert_array_equal(learner.transform(X_old), outputs)
    with pytest.raises(ValueError, match="features"):
        learner.transform(X_new)


def test_refused_learner_refit_leaves_it_as_it_was():
    X = _data(16)
    learner = _learner(image_shape=(4, 4)).fit(X)
    before = pickle.dumps(learner)
    with pytest.raises(ValueError, match="image_shape"):
        learner.fit(_data(12))  # validate_data has reset n_features_in_ by then
    assert pickle.dumps(learner) == before
    with pytest.raises(ValueError, match="NaN"):
        learner.fit_stream([X[:40], np.full((5, 16), np.nan)], n_passes=1, n_held=40)
    assert pickle.dumps(learner) == before


def test_interrupted_preprocessor_fit_leaves_it_as_it_was(monkeypatch):
    X_old, X_new = _data(6), _data(5, seed=1)
    pre = Preprocessor("zca").fit(X_old)
    before = pickle.dumps(pre)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np.linalg, "eigh", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pre.fit(X_new)
    assert pickle.dumps(pre) == before


def test_successful_fits_are_unchanged_by_the_transaction():
    # the copies a transaction works on are the state the fit continues from
    X = _data(12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = _layer().fit(X).partial_fit(X)
        b = _layer().fit(X)
    state = {k: v for k, v in vars(b).items()}
    b.partial_fit(X)
    assert pickle.dumps(a) == pickle.dumps(b)
    assert state.keys() == vars(b).keys()
