"""Tests of ``GroupSparseCodingLayer``: descent, recovery of planted structure, the
transformer API and scikit-learn conventions."""

import pickle
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_structlearn import GroupSparseCodingLayer, group_sparse_encode
from sklearn_structlearn._groups import pool_codes
from sklearn_structlearn.datasets import make_planted_structure
from sklearn_structlearn.objective import group_norms, layer_objective

ignore_convergence = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def planted(n_samples=150, n_features=16, n_components=8, group_size=1, fan_in=4,
            active_groups=2, noise=0.01, seed=0):
    return make_planted_structure(
        n_samples=n_samples, n_features=n_features, n_components=n_components,
        group_size=group_size, fan_in=fan_in, active_groups=active_groups, noise=noise,
        random_state=seed)


@pytest.fixture(scope="module")
def data():
    return planted().X


@pytest.fixture(scope="module")
def fitted(data):
    """A small fitted layer, shared by the read-only API tests."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GroupSparseCodingLayer(n_components=8, group_size=2, alpha=0.2,
                                      connectivity_alpha=0.005, max_iter=15,
                                      random_state=0).fit(data)


def fit_quietly(layer, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return layer.fit(X)


def atom_recovery(true_dictionary, learned):
    """Per true atom, the best |cosine| with a learned atom."""
    norms = np.linalg.norm(learned, axis=1, keepdims=True)
    cosines = np.abs(true_dictionary @ (learned / np.where(norms > 0, norms, 1.0)).T)
    return cosines.max(axis=1), cosines.argmax(axis=1)


def subspace_recovery(true_dictionary, learned, group_size):
    """Per true atom, the largest norm of its projection on the span of a learned group.

    Within a group the atoms are not identifiable (rotating a group's atoms and codes
    leaves the reconstruction and nearly the penalty unchanged): what is learned is the
    group's subspace."""
    bases = [np.linalg.qr(learned[g:g + group_size].T)[0]
             for g in range(0, learned.shape[0], group_size) if np.any(learned[g:g + group_size])]
    atoms = true_dictionary / np.linalg.norm(true_dictionary, axis=1, keepdims=True)
    return np.array([max(np.linalg.norm(Q.T @ atom) for Q in bases) for atom in atoms])


# --------------------------------------------------------------------------- descent
@pytest.mark.parametrize("group_size", [1, 4])
@pytest.mark.parametrize("connectivity_alpha", [0.0, 0.01, "auto"])
def test_objective_never_increases_between_reseeds(group_size, connectivity_alpha):
    d = planted(n_samples=120, n_features=16, n_components=8, group_size=group_size,
                active_groups=2 if group_size == 1 else 1, seed=group_size)
    layer = fit_quietly(GroupSparseCodingLayer(
        n_components=8, group_size=group_size, alpha=0.2 if group_size == 1 else 0.4,
        connectivity_alpha=connectivity_alpha, max_iter=25, tol=0.0, random_state=0), d.X)
    history = np.array(layer.objective_history_)
    reseeded = np.array(layer.n_reseeded_)
    assert len(history) == len(reseeded) == layer.n_iter_
    assert np.all(np.isfinite(history)) and np.all(history > 0)
    # a re-seed at the end of iteration t may raise the objective at t + 1; nothing else may
    clean = reseeded[:-1] == 0
    assert clean.sum() >= 5  # the check below is not vacuous
    increase = np.diff(history) / history[1:]
    assert np.all(increase[clean] <= 1e-10), increase[clean].max()
    assert history[-1] < history[0]


@ignore_convergence
@pytest.mark.parametrize("group_size", [1, 2])
def test_objective_history_is_the_layer_objective(group_size):
    # the recorded value (codes of the last step, final dictionary) bounds the objective of
    # the final dictionary with fresh optimal codes, and at convergence nearly equals it
    d = planted(n_samples=100, group_size=group_size, active_groups=1, seed=5)
    layer = GroupSparseCodingLayer(n_components=8, group_size=group_size, alpha=0.2,
                                   connectivity_alpha=0.01, max_iter=200, tol=1e-8,
                                   random_state=0).fit(d.X)
    fresh = layer_objective(d.X, layer.components_, layer.encode(d.X), layer.alpha_,
                            layer.connectivity_alpha_, group_size)
    recorded = layer.objective_history_[-1]
    assert fresh <= recorded * (1 + 1e-6)
    assert fresh >= recorded * (1 - 1e-4)


def test_fit_on_coherent_overcomplete_groups_stays_finite():
    d = planted(n_samples=60, n_features=20, n_components=8, group_size=4, fan_in=5,
                active_groups=1, seed=1)
    layer = fit_quietly(GroupSparseCodingLayer(n_components=24, group_size=4, alpha=0.2,
                                               connectivity_alpha=0.0, max_iter=3,
                                               random_state=1), d.X)
    # (regression: the code solver used to diverge on such dictionaries, see
    # test_encode.py::test_coherent_overcomplete_dictionaries, leaving values like -4e67 here)
    history = np.array(layer.objective_history_)
    assert np.all(np.isfinite(history)) and np.all(history > 0)
    clean = np.array(layer.n_reseeded_[:-1]) == 0
    assert np.all(np.diff(history)[clean] <= 1e-10 * history[1:][clean])
    assert np.all(np.isfinite(layer.components_))
    assert np.all(np.linalg.norm(layer.components_, axis=1) <= 1 + 1e-10)


# --------------------------------------------------------------------------- recovery
@pytest.mark.parametrize("seed", [0, 3])
def test_planted_atoms_are_recovered(seed):
    # 1-sparse planted codes, twice as many learned units as planted atoms (over-complete
    # dictionaries escape the local minima of exactly-complete ones)
    d = planted(n_samples=300, n_features=20, n_components=8, fan_in=5, active_groups=1,
                seed=seed)
    layer = fit_quietly(GroupSparseCodingLayer(n_components=16, alpha=0.1,
                                               connectivity_alpha=0.0, max_iter=100,
                                               random_state=seed), d.X)
    best, _ = atom_recovery(d.dictionary, layer.components_)
    assert np.all(best > 0.95), best


@pytest.mark.parametrize("seed", [1, 4])
def test_planted_atoms_and_connectivity_are_recovered(seed):
    d = planted(n_samples=300, n_features=20, n_components=8, fan_in=5, active_groups=1,
                seed=seed)
    layer = fit_quietly(GroupSparseCodingLayer(n_components=16, alpha=0.2,
                                               connectivity_alpha=0.01, max_iter=100,
                                               random_state=seed), d.X)
    best, which = atom_recovery(d.dictionary, layer.components_)
    assert np.all(best > 0.95), best
    # the connectivity penalty prunes the matched units to exactly the planted inputs
    assert_array_equal(layer.connectivity_[which], d.supports)
    assert layer.connectivity_.mean() < 0.5


@pytest.mark.parametrize("seed", [0, 2])
def test_planted_group_subspaces_are_recovered(seed):
    d = planted(n_samples=300, n_features=20, n_components=8, group_size=2, fan_in=5,
                active_groups=1, seed=seed)
    layer = fit_quietly(GroupSparseCodingLayer(n_components=16, group_size=2, alpha=0.3,
                                               connectivity_alpha=0.0, max_iter=100,
                                               random_state=seed), d.X)
    assert np.all(subspace_recovery(d.dictionary, layer.components_, 2) > 0.95)


# --------------------------------------------------------------------------- transforming
@ignore_convergence
@pytest.mark.parametrize("pooling", ["l2", "max", None])
def test_transform_encode_inverse_transform_shapes(data, pooling):
    layer = fit_quietly(GroupSparseCodingLayer(n_components=8, group_size=2, alpha=0.2,
                                               pooling=pooling, max_iter=10, random_state=0),
                        data)
    assert layer.components_.shape == (8, 16)
    assert layer.connectivity_.dtype == bool
    assert_array_equal(layer.connectivity_, layer.components_ != 0)
    assert np.all(np.linalg.norm(layer.components_, axis=1) <= 1 + 1e-10)
    assert layer.n_groups_ == 4 and layer.n_components_ == 8 and layer.n_features_in_ == 16
    codes = layer.encode(data)
    assert codes.shape == (150, 8)
    Z = layer.transform(data)
    assert Z.shape == ((150, 8) if pooling is None else (150, 4))
    assert_allclose(Z, pool_codes(codes, 2, pooling))
    if pooling == "l2":
        assert_allclose(Z, group_norms(codes, 2))
    elif pooling == "max":
        assert_allclose(Z, np.abs(codes).reshape(150, 4, 2).max(axis=2))
    # encode is the code solver on the learned dictionary
    assert_allclose(codes, group_sparse_encode(data, layer.components_, alpha=layer.alpha_,
                                               group_size=2), atol=1e-10)
    X_back = layer.inverse_transform(codes)
    assert X_back.shape == data.shape
    assert_allclose(X_back, codes @ layer.components_)
    # the codes reconstruct the data better than nothing
    assert np.sum((data - X_back) ** 2) < 0.5 * np.sum(data**2)
    assert_allclose(layer.fit_transform(data), Z)


def test_default_n_components_is_the_auto_width_in_whole_groups():
    # min(8 * 7 inputs, 40 rows // 2, 1024) = 20 units, rounded down to groups of 3
    X = np.random.default_rng(0).standard_normal((40, 7))
    layer = fit_quietly(GroupSparseCodingLayer(group_size=3, alpha=0.5, max_iter=3), X)
    assert layer.n_components_ == 18 and layer.n_groups_ == 6
    assert layer.components_.shape == (18, 7)
    # online, the rows are unknown: only the inputs and the solvers' cap set the width
    online = GroupSparseCodingLayer(group_size=3, alpha=0.5).partial_fit(X)
    assert online.n_components_ == 54


def test_auto_penalties_are_resolved(data):
    layer = fit_quietly(GroupSparseCodingLayer(n_components=8, group_size=2, max_iter=5,
                                               random_state=0), data)
    assert np.isfinite(layer.alpha_) and layer.alpha_ > 0
    assert np.isfinite(layer.connectivity_alpha_) and layer.connectivity_alpha_ >= 0
    # parameters are stored untouched
    assert layer.alpha == "auto" and layer.connectivity_alpha == "auto"


# --------------------------------------------------------------------------- online
def test_partial_fit_over_batches(data):
    d = planted(n_samples=400, n_features=16, n_components=8, active_groups=1, seed=7)
    layer = GroupSparseCodingLayer(n_components=12, alpha=0.2, connectivity_alpha=0.0,
                                   random_state=0)
    batches = np.array_split(d.X, 8)
    n_epochs = 4
    for epoch in range(n_epochs):
        for t, batch in enumerate(batches):
            assert layer.partial_fit(batch) is layer
            assert layer.n_iter_ == epoch * len(batches) + t + 1
    history = np.array(layer.objective_history_)
    assert history.shape == (n_epochs * len(batches),)
    assert np.all(np.isfinite(history))
    # the surrogate (running average of batch objectives) goes down epoch after epoch
    per_epoch = history.reshape(n_epochs, len(batches)).mean(axis=1)
    assert np.all(np.diff(per_epoch[1:]) < 0) and per_epoch[-1] < per_epoch[0]
    # ... and the streamed dictionary is as good as the planted one on all the data
    def objective(dictionary):
        codes = group_sparse_encode(d.X, dictionary, alpha=0.2)
        return layer_objective(d.X, dictionary, codes, 0.2)

    assert objective(layer.components_) <= 1.01 * objective(d.dictionary)
    assert np.all(atom_recovery(d.dictionary, layer.components_)[0] > 0.95)
    # memory independent of the number of samples seen
    assert layer._stats["B"].shape == (12, 12) and layer._stats["E"].shape == (12, 16)
    assert layer.transform(d.X).shape == (400, 12)
    with pytest.raises(ValueError, match="features"):
        layer.partial_fit(d.X[:10, :5])


def test_fit_with_batch_size(data):
    layer = GroupSparseCodingLayer(n_components=8, group_size=2, alpha=0.2, batch_size=32,
                                   max_iter=5, connectivity_alpha=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        layer.fit(data)
    n_batches = -(-150 // 32)
    assert len(layer.objective_history_) == layer.n_iter_
    assert layer.n_iter_ % n_batches == 0 and 0 < layer.n_iter_ <= 5 * n_batches
    assert np.all(np.isfinite(layer.objective_history_))
    assert layer.transform(data).shape == (150, 4)
    assert np.all(np.linalg.norm(layer.components_, axis=1) <= 1 + 1e-10)
    # a full-batch fit afterwards starts from scratch (no stale online statistics)
    layer.set_params(batch_size=None)
    fit_quietly(layer, data)
    assert len(layer.objective_history_) == layer.n_iter_ <= 5


def test_partial_fit_after_online_fit(data):
    layer = fit_quietly(GroupSparseCodingLayer(n_components=4, alpha=0.2, batch_size=50,
                                               max_iter=2, random_state=0), data)
    n_iter = layer.n_iter_
    layer.partial_fit(data[:20])
    assert layer.n_iter_ == n_iter + 1


def test_partial_fit_after_fit_continues_from_the_fitted_layer():
    d = planted(n_samples=200, n_features=16, n_components=8, active_groups=1, seed=2)
    layer = fit_quietly(GroupSparseCodingLayer(n_components=8, alpha=0.2, connectivity_alpha=0.0,
                                               max_iter=50, random_state=0), d.X)
    D_fit, n_iter, n_history = layer.components_.copy(), layer.n_iter_, len(
        layer.objective_history_)
    batch = d.X[:40]
    used = np.any(layer.encode(batch) != 0, axis=0)
    layer.partial_fit(batch)
    assert layer.n_iter_ == n_iter + 1
    assert len(layer.objective_history_) == n_history + 1
    # the units the batch uses are refined, not replaced
    cosines = np.sum(layer.components_[used] * D_fit[used], axis=1) / (
        np.linalg.norm(layer.components_[used], axis=1) * np.linalg.norm(D_fit[used], axis=1))
    assert np.all(cosines > 0.9), cosines


def test_pickle_in_the_middle_of_a_stream():
    d = planted(n_samples=120, seed=3)
    batches = np.array_split(d.X, 6)
    layer = GroupSparseCodingLayer(n_components=8, group_size=2, alpha=0.2, random_state=0)
    for batch in batches[:3]:
        layer.partial_fit(batch)
    twin = pickle.loads(pickle.dumps(layer))
    for batch in batches[3:]:
        layer.partial_fit(batch)
        twin.partial_fit(batch)
    assert_array_equal(twin.components_, layer.components_)
    assert twin.objective_history_ == layer.objective_history_


@ignore_convergence
def test_positive_codes():
    d = make_planted_structure(n_samples=150, n_features=16, n_components=8, fan_in=4,
                               active_groups=1, noise=0.01, positive=True, random_state=0)
    layer = GroupSparseCodingLayer(n_components=8, alpha=0.2, positive_code=True,
                                   connectivity_alpha=0.0, max_iter=30, tol=0.0,
                                   random_state=0).fit(d.X)
    codes = layer.encode(d.X)
    assert np.all(codes >= 0) and np.any(codes > 0)
    assert_allclose(layer.transform(d.X), codes)  # l2 pooling of groups of one: |a| = a
    history = np.array(layer.objective_history_)
    clean = np.array(layer.n_reseeded_[:-1]) == 0
    assert np.all(np.diff(history)[clean] <= 1e-10 * history[1:][clean])


# --------------------------------------------------------------------------- sklearn API
def test_feature_names_and_pandas_output(data):
    layer = fit_quietly(GroupSparseCodingLayer(n_components=8, group_size=2, alpha=0.2,
                                               max_iter=5, random_state=0), data)
    names = layer.get_feature_names_out()
    assert_array_equal(names, [f"groupsparsecodinglayer{i}" for i in range(4)])
    raw = clone(layer).set_params(pooling=None)
    fit_quietly(raw, data)
    assert_array_equal(raw.get_feature_names_out(),
                       [f"groupsparsecodinglayer{i}" for i in range(8)])

    columns = [f"pixel_{j}" for j in range(16)]
    df = pd.DataFrame(data, columns=columns)
    layer = clone(layer).set_output(transform="pandas")
    out = fit_quietly(layer, df).transform(df)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(names)
    assert_array_equal(out.index, df.index)
    assert_array_equal(layer.feature_names_in_, columns)
    assert_allclose(out.to_numpy(), layer.set_output(transform="default").transform(df))


def test_clone_and_pickle_round_trip(fitted, data):
    restored = pickle.loads(pickle.dumps(fitted))
    assert_array_equal(restored.transform(data), fitted.transform(data))
    assert_array_equal(restored.components_, fitted.components_)
    unfitted = clone(fitted)
    assert unfitted.get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        unfitted.transform(data)
    # same parameters and random_state: the same layer
    refit = fit_quietly(unfitted, data)
    assert_array_equal(refit.components_, fitted.components_)
    assert_array_equal(refit.transform(data), fitted.transform(data))


@ignore_convergence
def test_float32_is_preserved(data):
    X32 = data.astype(np.float32)
    layer = fit_quietly(GroupSparseCodingLayer(n_components=8, group_size=2, alpha=0.2,
                                               max_iter=10, random_state=0), X32)
    codes = layer.encode(X32)
    assert codes.dtype == np.float32
    assert layer.transform(X32).dtype == np.float32
    assert layer.fit_transform(X32).dtype == np.float32
    assert layer.inverse_transform(codes).dtype == np.float32
    assert clone(layer).set_params(pooling=None).fit_transform(X32).dtype == np.float32
    # float64 in, float64 out from the same layer, and the same fit as from float64 data
    assert layer.transform(data).dtype == np.float64
    layer64 = fit_quietly(clone(layer), data)
    assert_allclose(layer.components_, layer64.components_, atol=1e-4)


def test_random_state_reproducible(data):
    params = dict(n_components=8, group_size=2, max_iter=5)  # "auto" penalties use it too
    a = fit_quietly(GroupSparseCodingLayer(random_state=3, **params), data)
    b = fit_quietly(GroupSparseCodingLayer(random_state=3, **params), data)
    c = fit_quietly(GroupSparseCodingLayer(random_state=4, **params), data)
    assert_array_equal(a.components_, b.components_)
    assert a.alpha_ == b.alpha_
    assert not np.array_equal(a.components_, c.components_)
    d = fit_quietly(GroupSparseCodingLayer(random_state=np.random.RandomState(3), **params), data)
    assert_array_equal(a.components_, d.components_)


def test_one_or_two_threads_fit_the_same_layer(data):
    params = dict(n_components=8, group_size=2, alpha=0.2, max_iter=10, random_state=0)
    one = fit_quietly(GroupSparseCodingLayer(n_jobs=1, **params), data)
    two = fit_quietly(GroupSparseCodingLayer(n_jobs=2, **params), data)
    assert_allclose(one.components_, two.components_, atol=1e-10)


def test_verbose_prints_progress(data, capsys):
    fit_quietly(GroupSparseCodingLayer(n_components=4, alpha=0.3, max_iter=3, verbose=1,
                                       random_state=0), data)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "iter" in line]
    assert len(lines) == 3
    assert re.search(r"GroupSparseCodingLayer.*iter 1/3 objective", out)
    fit_quietly(GroupSparseCodingLayer(n_components=4, alpha=0.3, max_iter=2, batch_size=50,
                                       verbose=2, random_state=0), data)
    assert "epoch 1/2" in capsys.readouterr().out
    fit_quietly(GroupSparseCodingLayer(n_components=4, alpha=0.3, max_iter=3, verbose=0,
                                       random_state=0), data)
    assert capsys.readouterr().out == ""


def test_convergence_warning_when_max_iter_is_one(data):
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        GroupSparseCodingLayer(n_components=8, alpha=0.2, max_iter=1, random_state=0).fit(data)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        GroupSparseCodingLayer(n_components=8, alpha=0.2, max_iter=1, batch_size=30,
                               random_state=0).fit(data)


def test_converged_fit_does_not_warn(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        layer = GroupSparseCodingLayer(n_components=8, alpha=0.2, connectivity_alpha=0.0,
                                       max_iter=300, tol=1e-3, random_state=0).fit(data)
    assert layer.n_iter_ < 300


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(n_components=5, group_size=2), ValueError, "multiple of group_size"),
        (dict(group_size=0), ValueError, "group_size"),
        (dict(alpha=-1.0), ValueError, r"'alpha' parameter of GroupSparseCodingLayer must be a "
                                       r"float in the range \[0\.0, inf\)"),
        (dict(alpha="big"), TypeError, "alpha"),
        (dict(connectivity_alpha=-0.1), ValueError, "connectivity_alpha"),
        (dict(pooling="mean"), ValueError, r"'pooling' parameter of GroupSparseCodingLayer must "
                                           r"be a str among \{'l2', 'max'\} or None"),
        (dict(input_groups=np.arange(15)), ValueError, "input_groups.*length"),
        (dict(max_iter=0), ValueError, "max_iter"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(positive_code="yes"), TypeError, "positive_code"),
    ],
)
def test_bad_parameters_raise_clear_errors(data, params, error, match):
    with pytest.raises(error, match=match):
        GroupSparseCodingLayer(**params).fit(data)


def test_bad_data_raises_clear_errors(fitted, data):
    with pytest.raises(ValueError, match="16 features"):
        fitted.transform(data[:, :10])
    with pytest.raises(ValueError, match="16 features"):
        fitted.encode(data[:, :10])
    X_nan = data.copy()
    X_nan[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GroupSparseCodingLayer(max_iter=2).fit(X_nan)
    with pytest.raises(ValueError, match="NaN"):
        fitted.transform(X_nan)
    with pytest.raises(ValueError, match="pooled outputs cannot be inverted"):
        fitted.inverse_transform(fitted.transform(data))


def test_input_groups_prune_whole_groups(data):
    groups = np.repeat(np.arange(8), 2)  # pairs of inputs
    layer = fit_quietly(GroupSparseCodingLayer(n_components=8, alpha=0.2, input_groups=groups,
                                               connectivity_alpha=0.02, max_iter=20,
                                               random_state=0), data)
    blocks = layer.connectivity_.reshape(8, 8, 2)
    assert np.all(blocks.all(axis=2) | ~blocks.any(axis=2))
    assert 0 < layer.connectivity_.mean() < 1
    # the descent guarantee holds with input groups too
    history = np.array(layer.objective_history_)
    clean = np.array(layer.n_reseeded_[:-1]) == 0
    assert clean.sum() >= 3
    assert np.all(np.diff(history)[clean] <= 1e-10 * history[1:][clean])
    assert_allclose(
        history[-1],
        layer_objective(data, layer.components_, layer.encode(data), layer.alpha_,
                        layer.connectivity_alpha_, 1, groups),
        rtol=0.05)


# --------------------------------------------------------------------------- sklearn checks
@ignore_convergence
@parametrize_with_checks(
    [
        GroupSparseCodingLayer(max_iter=5, random_state=0),
        GroupSparseCodingLayer(max_iter=5, alpha=0.5, connectivity_alpha=0.0, batch_size=10,
                               pooling=None, random_state=0),
        GroupSparseCodingLayer(max_iter=5, transform_algorithm="threshold", random_state=0),
    ],
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@ignore_convergence
def test_input_groups_of_mixed_label_types_are_distinct_groups(data):
    # regression: np.asarray([1, "1"]) made both labels the string "1" (one group), and
    # labels that cannot be sorted ("'<' not supported") were refused
    p = data.shape[1]
    by_int = np.arange(p) // 2  # 8 groups of 2 inputs
    mixed = [int(g) if g % 2 else str(g) for g in by_int]  # 0 -> "0", 1 -> 1, ...
    clash = [1 if j < p // 2 else "1" for j in range(p)]  # two groups despite str(1) == "1"
    params = dict(n_components=8, group_size=2, alpha=0.2, connectivity_alpha=0.02,
                  max_iter=5, random_state=0)
    reference = GroupSparseCodingLayer(input_groups=by_int, **params).fit(data)
    layer = GroupSparseCodingLayer(input_groups=mixed, **params).fit(data)
    assert_allclose(layer.components_, reference.components_, atol=1e-12)
    halves = GroupSparseCodingLayer(input_groups=np.arange(p) >= p // 2, **params).fit(data)
    clashing = GroupSparseCodingLayer(input_groups=clash, **params).fit(data)
    assert_allclose(clashing.components_, halves.components_, atol=1e-12)
