"""Bad input at every public entry point: a ValueError / TypeError naming the parameter and
what was expected, raised before any heavy work.

"Before any heavy work" is checked without timing: the fixture ``no_heavy_work`` replaces
the code solver, the dictionary solver, the preprocessing fit, the supervised training and
the torch module builders by functions that fail the test if they are ever called. A bad
input must therefore be rejected by validation, never by a Numba typing error, a NumPy
broadcasting error or a crash deep inside a fit.
"""

import copy
import importlib.util
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_structlearn import (
    DeepStructureLearner,
    GroupSparseCodingLayer,
    StructuredNetClassifier,
    alpha_max,
    entropy_gain,
    group_sparse_encode,
    output_entropy,
)
from sklearn_structlearn import classifier as classifier_module
from sklearn_structlearn import encoding as encoding_module
from sklearn_structlearn import layer as layer_module
from sklearn_structlearn.cli import main as cli_main
from sklearn_structlearn.export import _build as build_module
from sklearn_structlearn.preprocessing import Preprocessor

RNG = np.random.default_rng(0)
X = RNG.standard_normal((30, 16))
D = RNG.standard_normal((4, 16))
Y = np.arange(30) % 2


def _with(X, i, j, value):
    X = X.astype(object) if not isinstance(value, float) else X.copy()
    X[i, j] = value
    return X


BAD_DATA = [
    # (array, exception, message pattern) -- the same table for every entry point taking X
    pytest.param(_with(X, 3, 2, np.nan), ValueError, r"NaN", id="nan"),
    pytest.param(_with(X, 3, 2, np.inf), ValueError, r"infinity", id="inf"),
    pytest.param(X[:0], ValueError, r"0 sample", id="empty"),
    pytest.param(X[0], ValueError, r"Expected 2D array", id="1d"),
    pytest.param(X[None], ValueError, r"dim 3", id="3d"),
    pytest.param(X + 1j, ValueError, r"Complex data not supported: X", id="complex"),
    pytest.param(X.astype(str), TypeError, r"X must hold numbers.*<U", id="strings"),
    pytest.param(_with(X, 0, 0, {"a": 1}), TypeError, r"X must hold numbers", id="object"),
    # regression: parsed or converted silently (the command line refuses them)
    pytest.param(_with(X, 0, 0, "1.5"), TypeError, r"X must hold numbers.*'1\.5' of type str",
                 id="numeric-string-object"),
    pytest.param(np.arange(X.size).reshape(X.shape).astype("datetime64[s]"), TypeError,
                 r"X must hold numbers .*datetime64\[s\] \(dates or durations\)",
                 id="datetime64"),
    pytest.param(np.arange(X.size).reshape(X.shape).astype("timedelta64[ms]"), TypeError,
                 r"X must hold numbers .*timedelta64\[ms\] \(dates or durations\)",
                 id="timedelta64"),
    pytest.param(pd.DataFrame({"a": ["1.5"] * 30, "b": np.arange(30.0)}), TypeError,
                 r"X \(column 'a'\) must hold numbers.*'1\.5'", id="dataframe-strings"),
    pytest.param(pd.DataFrame({"a": pd.date_range("2020-01-01", periods=30),
                               "b": np.arange(30.0)}), TypeError,
                 r"X \(column 'a'\) must hold numbers.*datetime64", id="dataframe-dates"),
]

# finite data whose squares over- or underflow: refused by everything that computes with
# them (the measurements of entropy/entropy.py compute at any magnitude instead)
RANGE = r"outside the range \[{}\] supported for {} data"
OUT_OF_RANGE = [
    pytest.param(X * 1e160, RANGE.format(r"1e-150, 1e\+150", "float64"), id="huge"),
    pytest.param(X * 1e-160, RANGE.format(r"1e-150, 1e\+150", "float64"), id="tiny"),
    pytest.param((X * 1e36).astype(np.float32), RANGE.format(r"1e-35, 1e\+35", "float32"),
                 id="huge-float32"),
    pytest.param((X * 1e-37).astype(np.float32), RANGE.format(r"1e-35, 1e\+35", "float32"),
                 id="tiny-float32"),
]


# what the declared constraints say (sklearn_structlearn._param_validation)
INT_GE = r"an int in the range \[{}, 9223372036854775807\]"
FLOAT_GE0 = r"a float in the range \[0\.0, inf\)"
AUTO = r" or a str among \{'auto'\}"
N_JOBS = (r"None, an int in the range \[1, 9223372036854775807\] or an int in the range "
          r"\(-inf, -1\]")
BOOL = r"an instance of 'bool' or an instance of 'numpy.bool_?'"
ENTROPY = r"a float in the range \(-inf, inf\)"
POOLING = r"a str among \{'l2', 'max'\} or None"
VERBOSE = r"an int in the range \[0, inf\), " + BOOL
LAYER = "GroupSparseCodingLayer"
LEARNER = "DeepStructureLearner"
PER_LAYER_PENALTY = (r"a float in the range \[0\.0, inf\), a str among \{'auto'\}, an instance "
                     r"of 'list', an instance of 'tuple' or an instance of 'numpy.ndarray'")


def param_error(name, caller, expected, got):
    """The message of a parameter value its declared constraint rejects."""
    return (rf"The '{re.escape(name)}' parameter of {caller} must be {expected}\. "
            rf"Got {re.escape(got)} instead")


def _forbidden(what):
    def fail(*args, **kwargs):
        raise AssertionError(f"{what} ran before the bad input was rejected")

    return fail


@pytest.fixture
def no_heavy_work(monkeypatch):
    monkeypatch.setattr(encoding_module, "solve_codes", _forbidden("the code solver"))
    monkeypatch.setattr(layer_module, "update_dictionary", _forbidden("the dictionary solver"))
    monkeypatch.setattr(Preprocessor, "fit", _forbidden("the preprocessing fit"))
    monkeypatch.setattr(Preprocessor, "fit_moments", _forbidden("the preprocessing fit"))
    monkeypatch.setattr(classifier_module.StructuredNetClassifier, "_train",
                        _forbidden("the supervised training"))
    monkeypatch.setattr(build_module, "_import_torch", _forbidden("the torch builder"))


def _quiet_fit(estimator, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(*args)


@pytest.fixture(scope="module")
def fitted_layer():
    return _quiet_fit(GroupSparseCodingLayer(n_components=4, group_size=2, alpha=0.5,
                                             max_iter=3, random_state=0), X)


@pytest.fixture(scope="module")
def fitted_learner():
    return _quiet_fit(DeepStructureLearner(max_depth=1, n_components=4, group_size=2,
                                           max_iter=3, random_state=0), X)


# --------------------------------------------------------------------------- group_sparse_encode
@pytest.mark.parametrize("bad, error, match", BAD_DATA)
def test_encode_bad_data(no_heavy_work, bad, error, match):
    with pytest.raises(error, match=match):
        group_sparse_encode(bad, D, alpha=1.0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(dictionary=D[:, :5]), ValueError, r"dictionary has 5 features .* X has 16"),
        (dict(dictionary=D[0]), ValueError, r"Expected 2D array"),
        (dict(dictionary=D[:0]), ValueError, r"dictionary must hold at least one atom"),
        (dict(dictionary=np.where(D > 1, np.nan, D)), ValueError, r"dictionary contains NaN"),
        (dict(dictionary=D.astype(str)), TypeError, r"dictionary must hold numbers"),
        (dict(dictionary=D + 1j), ValueError, r"Complex data not supported: dictionary"),
        (dict(group_size=3), ValueError, r"n_components=4 .* multiple of group_size=3"),
        (dict(group_size=0), ValueError,
         param_error("group_size", "group_sparse_encode", INT_GE.format(1), "0")),
        (dict(group_size=2.0), TypeError,
         param_error("group_size", "group_sparse_encode", INT_GE.format(1), "2.0")),
        (dict(alpha=-1.0), ValueError,
         param_error("alpha", "group_sparse_encode", FLOAT_GE0, "-1.0")),
        (dict(alpha=np.nan), ValueError,
         param_error("alpha", "group_sparse_encode", FLOAT_GE0, "nan")),
        (dict(alpha="auto"), TypeError,
         param_error("alpha", "group_sparse_encode", FLOAT_GE0, "'auto'")),
        (dict(alpha=None), TypeError,
         param_error("alpha", "group_sparse_encode", FLOAT_GE0, "None")),
        (dict(max_iter=0), ValueError,
         param_error("max_iter", "group_sparse_encode", INT_GE.format(1), "0")),
        (dict(max_iter=10**20), ValueError,
         param_error("max_iter", "group_sparse_encode", INT_GE.format(1), str(10**20))),
        (dict(tol=-1e-3), ValueError,
         param_error("tol", "group_sparse_encode", FLOAT_GE0, "-0.001")),
        (dict(tol=np.nan), ValueError,
         param_error("tol", "group_sparse_encode", FLOAT_GE0, "nan")),
        (dict(positive="yes"), TypeError,
         param_error("positive", "group_sparse_encode", BOOL, "'yes'")),
        (dict(init=np.zeros((30, 5))), ValueError, r"init must be of shape .*\(30, 4\)"),
        (dict(init=np.full((30, 4), np.nan)), ValueError, r"init contains NaN"),
        (dict(init=np.zeros((30, 4)).astype(str)), TypeError, r"init must hold numbers"),
        (dict(n_jobs=0), ValueError, param_error("n_jobs", "group_sparse_encode", N_JOBS, "0")),
        (dict(n_jobs=1.5), TypeError,
         param_error("n_jobs", "group_sparse_encode", N_JOBS, "1.5")),
        (dict(n_jobs="2"), TypeError,
         param_error("n_jobs", "group_sparse_encode", N_JOBS, "'2'")),
    ],
)
def test_encode_bad_parameters(no_heavy_work, kwargs, error, match):
    params = {"X": X, "dictionary": D, "alpha": 1.0, **kwargs}
    with pytest.raises(error, match=match):
        group_sparse_encode(**params)


# --------------------------------------------------------------------------- alpha_max
@pytest.mark.parametrize("bad, error, match", [p for p in BAD_DATA if p.id != "empty"])
def test_alpha_max_bad_data(bad, error, match):
    with pytest.raises(error, match=match):
        alpha_max(bad, D)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(dictionary=D[:, :5]), ValueError, r"dictionary has 5 features"),
        (dict(dictionary=D[:0]), ValueError, r"dictionary must hold at least one atom"),
        (dict(group_size=3), ValueError, r"multiple of group_size=3"),
        (dict(group_size=0), ValueError,
         param_error("group_size", "alpha_max", INT_GE.format(1), "0")),
        (dict(positive="no"), TypeError, param_error("positive", "alpha_max", BOOL, "'no'")),
    ],
)
def test_alpha_max_bad_parameters(kwargs, error, match):
    params = {"X": X, "dictionary": D, **kwargs}
    with pytest.raises(error, match=match):
        alpha_max(**params)


def test_alpha_max_of_no_rows_is_zero():
    assert alpha_max(X[:0], D) == 0.0


# --------------------------------------------------------------------------- magnitude
@pytest.mark.parametrize("bad, match", OUT_OF_RANGE)
def test_out_of_range_data_are_refused_before_any_work(fitted_layer, fitted_learner,
                                                      no_heavy_work, bad, match):
    # regression: "Input dictionary contains NaN" (no dictionary was passed), "Eigenvalues
    # did not converge", or zeros returned silently (standardize at 1e200)
    from sklearn_structlearn.penalties import auto_alpha, auto_connectivity_alpha

    calls = {
        "group_sparse_encode": lambda: group_sparse_encode(bad, D, alpha=1.0),
        "layer.fit": lambda: GroupSparseCodingLayer(n_components=4).fit(bad),
        "layer.partial_fit": lambda: GroupSparseCodingLayer(n_components=4).partial_fit(bad),
        "layer.transform": lambda: fitted_layer.transform(bad),
        "layer.encode": lambda: fitted_layer.encode(bad),
        "learner.fit": lambda: DeepStructureLearner().fit(bad),
        "learner.fit_stream": lambda: DeepStructureLearner().fit_stream([X, bad]),
        "learner.transform": lambda: fitted_learner.transform(bad),
        "auto_alpha": lambda: auto_alpha(bad, 4, 2),
        "auto_connectivity_alpha": lambda: auto_connectivity_alpha(bad, 1.0, 4, 2),
    }
    if bad.dtype == np.float64:  # alpha_max computes in float64: float32 data are in range
        calls["alpha_max"] = lambda: alpha_max(bad, D)
    for name, call in calls.items():
        with pytest.raises(ValueError, match=match):
            call()
    with pytest.raises(ValueError, match=match.replace("X", "dictionary")):
        group_sparse_encode(X.astype(bad.dtype), bad[:4], alpha=1.0)
    # (Preprocessor is tested in test_preprocessing.py: no_heavy_work replaces its fit)


# --------------------------------------------------------------------------- sizes
# Sizes that cannot fit in memory are refused before any work, naming the parameter and
# the memory it would need (regression: a MemoryError after seconds of work). 10**6 units
# need 7.3 TiB for their Gram matrix alone: more than any machine running these tests.
def test_huge_n_components_is_refused_before_any_work(no_heavy_work):
    match = (r"\(n_components=1000000\): 1000000 units on 16 inputs.*Gram matrix alone is "
             r"7\.3 TiB.*needs at least 14\.6 TiB of memory, more than this machine's")
    with pytest.raises(ValueError, match=match):
        GroupSparseCodingLayer(n_components=10**6).fit(X)
    with pytest.raises(ValueError, match=match):
        GroupSparseCodingLayer(n_components=10**6).partial_fit(X)
    with pytest.raises(ValueError, match=r"layer 1 of DeepStructureLearner " + match):
        DeepStructureLearner(n_components=10**6).fit(X)
    # layer 1's 8 units are 8 outputs (group_size=1 by default)
    with pytest.raises(ValueError, match=r"layer 2 of DeepStructureLearner \(n_components=1"
                                         r"000000\): 1000000 units on 8 inputs"):
        DeepStructureLearner(max_depth=2, n_components=[8, 10**6]).fit_stream([X, X])


def test_huge_dictionary_is_refused_before_any_work(no_heavy_work):
    # 10**6 atoms of one feature: an 8 MB dictionary whose Gram matrix is 7.3 TiB
    atoms = np.ones((10**6, 1))
    with pytest.raises(ValueError, match=r"a dictionary of 1000000 atoms \(its Gram matrix "
                                         r"alone is 7\.3 TiB.*needs at least"):
        group_sparse_encode(X[:, :1], atoms, alpha=1.0)


def test_huge_n_held_is_refused_before_any_work(no_heavy_work):
    with pytest.raises(ValueError, match=r"fit_stream\(n_held=1000000000000\): a held sample "
                                         r"of 1000000000000 rows x 16 features \(float64\) "
                                         r"needs at least 116\.4 TiB"):
        DeepStructureLearner().fit_stream([X, X], n_held=10**12)


def test_sizes_are_refused_against_this_machines_memory(monkeypatch, no_heavy_work):
    # the bounds are lower bounds of what the computation holds at once: a machine of
    # 1 MiB refuses what is modest here
    from sklearn_structlearn import _validation

    monkeypatch.setattr(_validation, "physical_memory", lambda: 2**20)
    wide = RNG.standard_normal((30, 300))
    with pytest.raises(ValueError, match=r"preprocessing='zca' on 300 features .* needs at "
                                         r"least 2\.1 MiB .* 1\.0 MiB; use preprocessing="
                                         r"'standardize'"):
        DeepStructureLearner(preprocessing="zca").fit(wide)
    with pytest.raises(ValueError, match=r"preprocessing='zca' on 300 features"):
        DeepStructureLearner(preprocessing="zca").fit_stream([wide], n_held=30)
    # (30 rows: the "auto" width would be 16 units, which fit; ask for 300)
    with pytest.raises(ValueError, match=r"GroupSparseCodingLayer\(n_components=300\): 300 "
                                         r"units on 300 inputs"):
        GroupSparseCodingLayer(n_components=300).fit(wide)
    with pytest.raises(ValueError, match=r"fit_stream\(n_held=4096\)"):
        DeepStructureLearner(preprocessing=None).fit_stream([wide])
    monkeypatch.setattr(_validation, "physical_memory", lambda: None)  # unknown: no check
    with pytest.raises(AssertionError, match="ran before"):
        GroupSparseCodingLayer(n_components=300).fit(wide)


# --------------------------------------------------------------------------- entropy
@pytest.mark.parametrize("bad, error, match", BAD_DATA)
def test_output_entropy_bad_data(bad, error, match):
    match = match.replace("X", "Z")
    with pytest.raises(error, match=match):
        output_entropy(bad)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(estimator="gauss"), ValueError,
         param_error("estimator", "output_entropy",
                     r"a str among \{'binned', 'knn'\} or a callable", "'gauss'")),
        (dict(estimator=None), ValueError,
         param_error("estimator", "output_entropy",
                     r"a str among \{'binned', 'knn'\} or a callable", "None")),
        (dict(n_bins=0), ValueError, param_error("n_bins", "output_entropy", INT_GE.format(1), "0")),
        (dict(zero_tol=-1.0), ValueError,
         param_error("zero_tol", "output_entropy", FLOAT_GE0, "-1.0")),
        (dict(zero_tol=np.nan), ValueError,
         param_error("zero_tol", "output_entropy", FLOAT_GE0, "nan")),
        (dict(bias_correction="yes"), ValueError,
         param_error("bias_correction", "output_entropy", BOOL, "'yes'")),
        (dict(estimator="knn", k=0), ValueError,
         param_error("k", "output_entropy", INT_GE.format(1), "0")),
        (dict(estimator="knn", k=30), ValueError, r"k=30 must be smaller than the number"),
        (dict(estimator="knn", max_samples=1), ValueError,
         param_error("max_samples", "output_entropy", INT_GE.format(2) + " or None", "1")),
        (dict(estimator=lambda Z: "high"), TypeError, r"callable estimator must return a num"),
    ],
)
def test_output_entropy_bad_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        output_entropy(X, **kwargs)


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((np.nan, 1.0), {}, ValueError,
         param_error("h_before", "entropy_gain", ENTROPY, "nan")),
        ((1.0, -np.inf), {}, ValueError,
         param_error("h_after", "entropy_gain", ENTROPY, "-inf")),
        (("a", 1.0), {}, TypeError, param_error("h_before", "entropy_gain", ENTROPY, "'a'")),
        ((1.0, None), {}, TypeError, param_error("h_after", "entropy_gain", ENTROPY, "None")),
        ((np.array([1.0, 2.0]), 1.0), {}, TypeError,
         param_error("h_before", "entropy_gain", ENTROPY, "array([1., 2.])")),
        ((1.0, 2.0), dict(eps=0.0), ValueError,
         param_error("eps", "entropy_gain", r"a float in the range \(0\.0, inf\)", "0.0")),
        ((1.0, 2.0), dict(eps=np.nan), ValueError,
         param_error("eps", "entropy_gain", r"a float in the range \(0\.0, inf\)", "nan")),
    ],
)
def test_entropy_gain_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        entropy_gain(*args, **kwargs)


# --------------------------------------------------------------------------- layer
@pytest.mark.parametrize("bad, error, match", BAD_DATA)
def test_layer_fit_bad_data(no_heavy_work, bad, error, match):
    with pytest.raises(error, match=match):
        GroupSparseCodingLayer(n_components=4).fit(bad)
    with pytest.raises(error, match=match):
        GroupSparseCodingLayer(n_components=4).partial_fit(bad)


@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(n_components=0), ValueError,
         param_error("n_components", LAYER, INT_GE.format(1) + " or None", "0")),
        (dict(n_components=-4), ValueError,
         param_error("n_components", LAYER, INT_GE.format(1) + " or None", "-4")),
        (dict(n_components=4.0), TypeError,
         param_error("n_components", LAYER, INT_GE.format(1) + " or None", "4.0")),
        (dict(n_components=6, group_size=4), ValueError,
         r"n_components=6 must be a multiple of group_size=4"),
        (dict(group_size=-1), ValueError,
         param_error("group_size", LAYER, INT_GE.format(1), "-1")),
        (dict(alpha=np.nan), ValueError, param_error("alpha", LAYER, FLOAT_GE0 + AUTO, "nan")),
        (dict(alpha="AUTO"), TypeError,
         param_error("alpha", LAYER, FLOAT_GE0 + AUTO, "'AUTO'")),
        (dict(connectivity_alpha=np.nan), ValueError,
         param_error("connectivity_alpha", LAYER, FLOAT_GE0 + AUTO, "nan")),
        (dict(connectivity_alpha=-np.inf), ValueError,
         param_error("connectivity_alpha", LAYER, FLOAT_GE0 + AUTO, "-inf")),
        (dict(pooling="L2"), ValueError, param_error("pooling", LAYER, POOLING, "'L2'")),
        (dict(input_groups=np.zeros((4, 4))), ValueError, r"input_groups must be a 1-d array "
                                                          r"of length n_features=16"),
        (dict(input_groups=[0, 1]), ValueError, r"input_groups .* got shape \(2,\)"),
        # regression: "'<' not supported between instances of 'int' and 'NoneType'"
        (dict(input_groups=[None] + [1] * 15), ValueError,
         r"input_groups must hold a label for every input, got None at position 0"),
        (dict(input_groups=[0] * 8 + ["a"] * 7 + [None]), ValueError,
         r"input_groups must hold a label for every input, got None at position 15"),
        (dict(input_groups=[0] * 15 + [{"a": 1}]), TypeError,
         r"input_groups labels must be ints or strings, got \{'a': 1\} of type dict"),
        (dict(tol=np.nan), ValueError, param_error("tol", LAYER, FLOAT_GE0, "nan")),
        (dict(transform_max_iter=0), ValueError,
         param_error("transform_max_iter", LAYER, INT_GE.format(1), "0")),
        (dict(transform_max_iter=2**64), ValueError,
         param_error("transform_max_iter", LAYER, INT_GE.format(1), str(2**64))),
        (dict(transform_tol=-1.0), ValueError,
         param_error("transform_tol", LAYER, FLOAT_GE0, "-1.0")),
        (dict(batch_size=2.5), TypeError,
         param_error("batch_size", LAYER, INT_GE.format(1) + " or None", "2.5")),
        (dict(n_jobs=0), ValueError, param_error("n_jobs", LAYER, N_JOBS, "0")),
        (dict(n_jobs=2.0), TypeError, param_error("n_jobs", LAYER, N_JOBS, "2.0")),
        (dict(verbose=-1), ValueError, param_error("verbose", LAYER, VERBOSE, "-1")),
    ],
)
def test_layer_bad_parameters(no_heavy_work, params, error, match):
    with pytest.raises(error, match=match):
        GroupSparseCodingLayer(**params).fit(X)
    with pytest.raises(error, match=match):
        GroupSparseCodingLayer(**params).partial_fit(X)


@pytest.mark.parametrize("method", ["transform", "encode", "partial_fit"])
@pytest.mark.parametrize("bad, error, match",
                         BAD_DATA + [pytest.param(X[:, :5], ValueError,
                                                  r"X has 5 features, but .* expecting 16",
                                                  id="n_features")])
def test_layer_bad_data_after_fit(fitted_layer, no_heavy_work, method, bad, error, match):
    with pytest.raises(error, match=match):
        getattr(fitted_layer, method)(bad)


def test_layer_inverse_transform_bad_codes(fitted_layer):
    with pytest.raises(ValueError, match=r"n_components_=4 columns, got 2"):
        fitted_layer.inverse_transform(np.zeros((3, 2)))
    with pytest.raises(TypeError, match=r"X must hold numbers"):
        fitted_layer.inverse_transform(np.zeros((3, 4)).astype(str))
    with pytest.raises(ValueError, match=r"Complex data not supported"):
        fitted_layer.inverse_transform(np.zeros((3, 4)) + 1j)


def test_layer_pooling_set_after_fit_is_checked_before_coding(fitted_layer, no_heavy_work):
    layer = copy.deepcopy(fitted_layer).set_params(pooling="mean")  # the shared one untouched
    with pytest.raises(ValueError, match=param_error("pooling", LAYER, POOLING, "'mean'")):
        layer.transform(X)


@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(transform_max_iter=0), ValueError,
         param_error("transform_max_iter", LAYER, INT_GE.format(1), "0")),
        (dict(transform_max_iter=-5), ValueError,
         param_error("transform_max_iter", LAYER, INT_GE.format(1), "-5")),
        (dict(transform_max_iter="50"), TypeError,
         param_error("transform_max_iter", LAYER, INT_GE.format(1), "'50'")),
        (dict(transform_tol=-1.0), ValueError,
         param_error("transform_tol", LAYER, FLOAT_GE0, "-1.0")),
        (dict(transform_tol="1e-3"), TypeError,
         param_error("transform_tol", LAYER, FLOAT_GE0, "'1e-3'")),
        (dict(positive_code="no"), TypeError,
         param_error("positive_code", LAYER, BOOL, "'no'")),
        (dict(group_size=0), ValueError,
         param_error("group_size", LAYER, INT_GE.format(1), "0")),
        (dict(group_size=4), ValueError,
         r"group_size=4 was set after fit, but the layer was fitted with group_size=2"),
        (dict(group_size=1), ValueError,
         r"group_size=1 was set after fit, but the layer was fitted with group_size=2"),
        (dict(n_jobs="2"), TypeError, param_error("n_jobs", LAYER, N_JOBS, "'2'")),
        (dict(transform_algorithm="omp"), ValueError,
         param_error("transform_algorithm", LAYER, "a str among {'lasso', 'threshold'}",
                     "'omp'")),
    ],
)
@pytest.mark.parametrize("method", ["transform", "encode", "get_feature_names_out",
                                    "to_torch"])
def test_layer_parameters_set_after_fit_are_checked(fitted_layer, no_heavy_work, params,
                                                    error, match, method):
    # regression: a new group_size / transform_tol gave raw reshape / ZeroDivision errors,
    # transform_max_iter=0 all-zero outputs; -5, "50", positive_code="no" were accepted
    layer = copy.deepcopy(fitted_layer).set_params(**params)
    with pytest.raises(error, match=match):
        getattr(layer, method)(*([X] if method in ("transform", "encode") else []))


def test_layer_pooling_set_after_fit_gives_consistent_names(fitted_layer):
    # the outputs and their names follow the layer's current pooling together
    layer = copy.deepcopy(fitted_layer)
    for pooling, width in [(None, 4), ("max", 2), ("l2", 2)]:
        layer.set_params(pooling=pooling)
        assert layer.transform(X).shape[1] == len(layer.get_feature_names_out()) == width


def test_learner_pooling_set_after_fit_is_refused(fitted_learner, no_heavy_work):
    # regression: transform gave the fitted layers' 2 pooled outputs, get_feature_names_out
    # 4 unit names (pandas output failed, transform_dask declared a wrong shape)
    learner = copy.deepcopy(fitted_learner).set_params(pooling=None)
    for call in (lambda: learner.transform(X), learner.get_feature_names_out,
                 learner.to_torch):
        with pytest.raises(ValueError, match=r"pooling=None was set after fit, but the "
                                             r"layers were fitted with pooling='l2'"):
            call()
    learner.set_params(pooling="mean")
    with pytest.raises(ValueError, match=param_error("pooling", LEARNER, POOLING, "'mean'")):
        learner.get_feature_names_out()
    learner.set_params(pooling="l2")
    assert len(learner.get_feature_names_out()) == learner.layers_[-1].n_groups_ == 2


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(mode="fast"), ValueError, r"mode must be 'exact' or 'feedforward', got 'fast'"),
        (dict(n_classes=0), ValueError, r"n_classes must be None or a positive integer"),
        (dict(n_classes=2.5), ValueError, r"n_classes must be None or a positive integer"),
        (dict(n_classes=True), ValueError, r"n_classes must be None or a positive integer"),
        (dict(n_iter=0), ValueError, r"n_iter must be a positive integer"),
    ],
)
@pytest.mark.parametrize("which", ["layer", "learner"])
def test_to_torch_bad_parameters(fitted_layer, fitted_learner, no_heavy_work, which, kwargs,
                                 error, match):
    # rejected before torch is even imported: these errors do not need torch installed
    estimator = fitted_layer if which == "layer" else fitted_learner
    with pytest.raises(error, match=match):
        estimator.to_torch(**kwargs)


def test_to_torch_bad_dtype(fitted_layer):
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"dtype must be a floating torch.dtype"):
        fitted_layer.to_torch(dtype="float32")


# --------------------------------------------------------------------------- deep learner
@pytest.mark.parametrize("bad, error, match",
                         BAD_DATA + [pytest.param(X[:1], ValueError, r"1 sample.*minimum of 2",
                                                  id="one_sample")])
def test_learner_fit_bad_data(no_heavy_work, bad, error, match):
    with pytest.raises(error, match=match):
        DeepStructureLearner().fit(bad)


@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(max_depth=0), ValueError, param_error("max_depth", LEARNER, INT_GE.format(1), "0")),
        (dict(max_depth=None), TypeError,
         param_error("max_depth", LEARNER, INT_GE.format(1), "None")),
        (dict(max_depth=2.0), TypeError,
         param_error("max_depth", LEARNER, INT_GE.format(1), "2.0")),
        (dict(max_depth=2, n_components=[8, 8, 8]), ValueError,
         r"n_components has 3 per-layer values but max_depth=2"),
        (dict(max_depth=2, n_components=[8, 0]), ValueError,
         param_error("n_components[1]", LEARNER, INT_GE.format(1) + " or None", "0")),
        (dict(max_depth=2, group_size=[2, 3], n_components=8), ValueError,
         r"Layer 2: n_components=8 is not a multiple of group_size=3"),
        (dict(alpha=np.nan), ValueError,
         param_error("alpha", LEARNER, PER_LAYER_PENALTY, "nan")),
        (dict(connectivity_alpha=-1.0), ValueError,
         param_error("connectivity_alpha", LEARNER, PER_LAYER_PENALTY, "-1.0")),
        (dict(depth_tol="a"), TypeError,
         param_error("depth_tol", LEARNER, r"a float in the range \[-inf, inf\]", "'a'")),
        (dict(entropy_estimator="gauss"), ValueError,
         param_error("entropy_estimator", LEARNER,
                     r"a str among \{'binned', 'knn'\} or a callable", "'gauss'")),
        (dict(preprocessing="ZCA"), ValueError,
         param_error("preprocessing", LEARNER, r"a str among \{'standardize', 'zca'\} or None",
                     "'ZCA'")),
        (dict(zca_epsilon=np.nan), ValueError,
         param_error("zca_epsilon", LEARNER, FLOAT_GE0, "nan")),
        (dict(image_shape=(3, 3)), ValueError, r"image_shape \(3, 3\) has 9 features but the "
                                               r"data have 16"),
        (dict(image_shape=(4, -4)), ValueError, r"image_shape must be .* positive sizes"),
        (dict(image_shape=(2, 2, 2, 2)), ValueError, r"image_shape must be \(height, width\)"),
        (dict(image_shape=16), ValueError,
         param_error("image_shape", LEARNER, "an array-like or None", "16")),
        (dict(image_shape="4x4"), TypeError,
         param_error("image_shape", LEARNER, "an array-like or None", "'4x4'")),
        (dict(image_shape=(4, 4.0)), TypeError, r"image_shape must be a tuple of ints"),
        (dict(pooling="avg"), ValueError, param_error("pooling", LEARNER, POOLING, "'avg'")),
        (dict(positive_code=1), TypeError, param_error("positive_code", LEARNER, BOOL, "1")),
        (dict(max_iter=0), ValueError, param_error("max_iter", LEARNER, INT_GE.format(1), "0")),
        (dict(tol=-1.0), ValueError, param_error("tol", LEARNER, FLOAT_GE0, "-1.0")),
        (dict(n_jobs=0), ValueError, param_error("n_jobs", LEARNER, N_JOBS, "0")),
        (dict(verbose=-2), ValueError, param_error("verbose", LEARNER, VERBOSE, "-2")),
    ],
)
def test_learner_bad_parameters(no_heavy_work, params, error, match):
    with pytest.raises(error, match=match):
        DeepStructureLearner(**params).fit(X)


@pytest.mark.parametrize("bad, error, match",
                         BAD_DATA + [pytest.param(X[:, :5], ValueError,
                                                  r"X has 5 features, but .* expecting 16",
                                                  id="n_features")])
def test_learner_transform_bad_data(fitted_learner, no_heavy_work, bad, error, match):
    with pytest.raises(error, match=match):
        fitted_learner.transform(bad)


# --------------------------------------------------------------------------- classifier
NEEDS_TORCH = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="needs torch")
TINY = dict(structure_learner=DeepStructureLearner(max_depth=1, n_components=4, group_size=2,
                                                  max_iter=2),
            max_epochs=2, batch_size=8, random_state=0, n_jobs=1)


def _learner(**params):
    return DeepStructureLearner(**{"max_depth": 1, "n_components": 4, "group_size": 2,
                                   "max_iter": 2, **params})


@pytest.mark.parametrize("bad, error, match", BAD_DATA)
def test_classifier_fit_bad_data(no_heavy_work, bad, error, match):
    y = Y[:len(bad)] if np.ndim(bad) == 2 else Y
    with pytest.raises(error, match=match):
        StructuredNetClassifier(**TINY).fit(bad, y)


@pytest.mark.parametrize(
    "params, y, error, match",
    [
        ({}, Y[:20], ValueError, r"inconsistent numbers of samples: \[30, 20\]"),
        ({}, np.c_[Y, Y], ValueError, r"y should be a 1d array"),
        ({}, RNG.standard_normal(30), ValueError, r"Unknown label type: continuous"),
        ({}, np.zeros(30), ValueError, r"at least 2 classes"),
        ({}, np.where(Y, np.nan, 0.0), ValueError, r"y contains NaN"),
        (dict(batch_size=0), Y, ValueError, r"'batch_size' parameter .* Got 0"),
        (dict(learning_rate=np.nan), Y, ValueError, r"'learning_rate' parameter .* Got nan"),
        (dict(validation_fraction=-0.1), Y, ValueError,
         r"'validation_fraction' parameter .* Got -0.1"),
        (dict(n_jobs="a"), Y, TypeError, r"'n_jobs' parameter .* Got 'a'"),
        (dict(max_structure_samples=1), Y, ValueError,
         r"'max_structure_samples' parameter .* Got 1"),
        (dict(structure_params=[1]), Y, TypeError, r"'structure_params' parameter .* Got \[1\]"),
        (dict(structure_learner="DeepStructureLearner"), Y, TypeError,
         r"'structure_learner' parameter .* an object implementing 'fit' and 'to_torch'"),
        # checked by the structure learner, which runs after torch is imported
        pytest.param(dict(structure_learner=_learner(max_depth=0)), Y, ValueError,
                     r"max_depth'? (parameter .*)?must be", marks=NEEDS_TORCH),
        pytest.param(dict(structure_learner=_learner(image_shape=(3, 3))), Y, ValueError,
                     r"image_shape \(3, 3\) has 9 features", marks=NEEDS_TORCH),
        pytest.param(dict(structure_learner=_learner(group_size=3)), Y, ValueError,
                     r"n_components=4 is not a multiple of group_size=3", marks=NEEDS_TORCH),
        pytest.param(dict(device="cuda:99"), Y, ValueError, r"device='cuda:99'",
                     marks=NEEDS_TORCH),
    ],
)
def test_classifier_bad_parameters(no_heavy_work, params, y, error, match):
    with pytest.raises(error, match=match):
        StructuredNetClassifier(**{**TINY, **params}).fit(X, y)


def test_classifier_validation_split_leaving_one_sample(no_heavy_work):
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"validation_fraction=0.5 leaves 1 training samples "
                                         r"out of 3; at least 2 are needed"):
        StructuredNetClassifier(**TINY, validation_fraction=0.5).fit(X[:3], Y[:3])


@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_log_proba"])
def test_classifier_predict_bad_data(no_heavy_work, method):
    pytest.importorskip("torch")
    clf = StructuredNetClassifier(**TINY)
    # a "fitted" classifier whose network must never run on bad data
    clf.classes_, clf.n_features_in_, clf.net_ = np.array([0, 1]), 16, None
    for bad, error, match in [(p.values[0], p.values[1], p.values[2]) for p in BAD_DATA]:
        with pytest.raises(error, match=match):
            getattr(clf, method)(bad)
    with pytest.raises(ValueError, match=r"X has 5 features, but .* expecting 16"):
        getattr(clf, method)(X[:, :5])


# --------------------------------------------------------------------------- CLI
@pytest.mark.parametrize(
    "args, match",
    [
        (["--max-depth", "0"], r"argument --max-depth: must be >= 1, got 0"),
        (["--n-components", "5", "--group-size", "2"],
         r"--n-components 5 is not a multiple of --group-size 2"),
        (["--alpha", "nan"], r"argument --alpha: expected 'auto', a finite float >= 0"),
        (["--alpha", "-1"], r"argument --alpha: expected 'auto', a finite float >= 0"),
        (["--n-jobs", "0"], r"0 threads has no meaning"),
        (["--n-samples", "1"], r"argument --n-samples: must be >= 2, got 1"),
        (["--image-shape", "3x3"], r"--image-shape 3x3 has 9 pixels but data.npy has 16"),
        (["--max-iter", "0"], r"argument --max-iter: must be >= 1"),
        (["--n-components", "8,8", "--max-depth", "3"],
         r"--n-components has 2 per-layer values but --max-depth is 3"),
    ],
)
def test_cli_bad_options(tmp_path, capsys, no_heavy_work, args, match):
    np.save(tmp_path / "data.npy", X)
    status = cli_main(["learn", "--data", str(tmp_path / "data.npy"), "--out",
                       str(tmp_path / "out"), "--no-plots", "-q", *args])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("sklearn-structlearn: error:") and err.count("\n") == 1
    assert re.search(match, err), err
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.parametrize(
    "data, match",
    [
        (X + 1j, r"data.npy must hold real numbers, got dtype complex128"),
        (X.astype(str), r"data.npy must hold real numbers, got dtype <U"),
        (np.where(X > 1, np.nan, X), r"NaN"),
        (X[:0], r"0 sample"),
        (X[0], r"shape \(16,\); expected \(n_samples, n_features\)"),
    ],
)
def test_cli_bad_data_files(tmp_path, capsys, no_heavy_work, data, match):
    np.save(tmp_path / "data.npy", data)
    status = cli_main(["learn", "--data", str(tmp_path / "data.npy"), "--out",
                       str(tmp_path / "out"), "--no-plots", "-q"])
    assert status == 2
    assert re.search(match, capsys.readouterr().err)


def test_cli_bad_image_shape_syntax_exits_with_one_line(tmp_path, capsys):
    status = cli_main(["learn", "--data", "digits", "--out", str(tmp_path / "out"),
                       "--image-shape", "8by8"])
    assert status == 2
    err = capsys.readouterr().err
    assert "argument --image-shape: must look like HxW" in err and err.count("\n") == 1
