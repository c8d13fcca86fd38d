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
from sklearn_structlearn import layer as layer_module
from sklearn_structlearn.cli import main as cli_main
from sklearn_structlearn.export import _build as build_module

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
]


def _forbidden(what):
    def fail(*args, **kwargs):
        raise AssertionError(f"{what} ran before the bad input was rejected")

    return fail


@pytest.fixture
def no_heavy_work(monkeypatch):
    monkeypatch.setattr(layer_module, "solve_codes", _forbidden("the code solver"))
    monkeypatch.setattr(layer_module, "update_dictionary", _forbidden("the dictionary solver"))
    monkeypatch.setattr(DeepStructureLearner, "_fit_preprocessing",
                        _forbidden("the preprocessing fit"))
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
        (dict(group_size=0), ValueError, r"group_size must be >= 1, got 0"),
        (dict(group_size=2.0), TypeError, r"group_size must be an int"),
        (dict(alpha=-1.0), ValueError, r"alpha must be >= 0"),
        (dict(alpha=np.nan), ValueError, r"alpha must be finite"),
        (dict(alpha="auto"), TypeError, r"alpha must be a float"),
        (dict(alpha=None), TypeError, r"alpha must be a float"),
        (dict(max_iter=0), ValueError, r"max_iter must be >= 1"),
        (dict(max_iter=10**20), ValueError, r"max_iter must be <= 9223372036854775807"),
        (dict(tol=-1e-3), ValueError, r"tol must be >= 0"),
        (dict(tol=np.nan), ValueError, r"tol must be finite"),
        (dict(positive="yes"), TypeError, r"positive must be True or False"),
        (dict(init=np.zeros((30, 5))), ValueError, r"init must be of shape .*\(30, 4\)"),
        (dict(init=np.full((30, 4), np.nan)), ValueError, r"init contains NaN"),
        (dict(init=np.zeros((30, 4)).astype(str)), TypeError, r"init must hold numbers"),
        (dict(n_jobs=0), ValueError, r"n_jobs == 0"),
        (dict(n_jobs=1.5), TypeError, r"n_jobs must be None or an int"),
        (dict(n_jobs="2"), TypeError, r"n_jobs must be None or an int"),
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
        (dict(group_size=0), ValueError, r"group_size must be >= 1"),
        (dict(positive="no"), TypeError, r"positive must be True or False"),
    ],
)
def test_alpha_max_bad_parameters(kwargs, error, match):
    params = {"X": X, "dictionary": D, **kwargs}
    with pytest.raises(error, match=match):
        alpha_max(**params)


def test_alpha_max_of_no_rows_is_zero():
    assert alpha_max(X[:0], D) == 0.0


# --------------------------------------------------------------------------- entropy
@pytest.mark.parametrize("bad, error, match", BAD_DATA)
def test_output_entropy_bad_data(bad, error, match):
    match = match.replace("X", "Z")
    with pytest.raises(error, match=match):
        output_entropy(bad)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(estimator="gauss"), ValueError, r"Unknown estimator 'gauss'"),
        (dict(estimator=None), ValueError, r"Unknown estimator None"),
        (dict(n_bins=0), ValueError, r"n_bins must be an integer >= 1"),
        (dict(zero_tol=-1.0), ValueError, r"zero_tol must be a finite non-negative"),
        (dict(zero_tol=np.nan), ValueError, r"zero_tol"),
        (dict(bias_correction="yes"), ValueError, r"bias_correction must be a bool"),
        (dict(estimator="knn", k=0), ValueError, r"k must be an integer >= 1"),
        (dict(estimator="knn", k=30), ValueError, r"k=30 must be smaller than the number"),
        (dict(estimator="knn", max_samples=1), ValueError, r"max_samples must be an integer"),
        (dict(estimator=lambda Z: "high"), TypeError, r"callable estimator must return a num"),
    ],
)
def test_output_entropy_bad_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        output_entropy(X, **kwargs)


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((np.nan, 1.0), {}, ValueError, r"Entropies must be finite"),
        ((1.0, -np.inf), {}, ValueError, r"Entropies must be finite"),
        (("a", 1.0), {}, TypeError, r"h_before must be a float"),
        ((1.0, None), {}, TypeError, r"h_after must be a float"),
        ((np.array([1.0, 2.0]), 1.0), {}, TypeError, r"h_before must be a float"),
        ((1.0, 2.0), dict(eps=0.0), ValueError, r"eps must be a positive number"),
        ((1.0, 2.0), dict(eps=np.nan), ValueError, r"eps must be a positive number"),
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
        (dict(n_components=0), ValueError, r"n_components must be >= 1, got 0"),
        (dict(n_components=-4), ValueError, r"n_components must be >= 1"),
        (dict(n_components=4.0), TypeError, r"n_components must be an int"),
        (dict(n_components=6, group_size=4), ValueError,
         r"n_components=6 must be a multiple of group_size=4"),
        (dict(group_size=-1), ValueError, r"group_size must be >= 1"),
        (dict(alpha=np.nan), ValueError, r"alpha must be finite"),
        (dict(alpha="AUTO"), TypeError, r"alpha must be a float or \"auto\""),
        (dict(connectivity_alpha=np.nan), ValueError, r"connectivity_alpha must be finite"),
        (dict(connectivity_alpha=-np.inf), ValueError, r"connectivity_alpha must be finite"),
        (dict(pooling="L2"), ValueError, r"pooling must be one of \['l2', 'max', None\]"),
        (dict(input_groups=np.zeros((4, 4))), ValueError, r"input_groups must be a 1-d array "
                                                          r"of length n_features=16"),
        (dict(input_groups=[0, 1]), ValueError, r"input_groups .* got shape \(2,\)"),
        (dict(tol=np.nan), ValueError, r"tol must be finite"),
        (dict(transform_max_iter=0), ValueError, r"transform_max_iter must be >= 1"),
        (dict(transform_max_iter=2**64), ValueError, r"transform_max_iter must be <= "),
        (dict(transform_tol=-1.0), ValueError, r"transform_tol must be >= 0"),
        (dict(batch_size=2.5), TypeError, r"batch_size must be an int"),
        (dict(n_jobs=0), ValueError, r"n_jobs == 0"),
        (dict(n_jobs=2.0), TypeError, r"n_jobs must be None or an int"),
        (dict(verbose=-1), ValueError, r"verbose must be >= 0"),
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
    with pytest.raises(ValueError, match=r"pooling must be one of"):
        layer.transform(X)


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
        (dict(max_depth=0), ValueError, r"max_depth must be >= 1, got 0"),
        (dict(max_depth=None), TypeError, r"max_depth must be an int"),
        (dict(max_depth=2.0), TypeError, r"max_depth must be an int"),
        (dict(max_depth=2, n_components=[8, 8, 8]), ValueError,
         r"n_components has 3 per-layer values but max_depth=2"),
        (dict(max_depth=2, n_components=[8, 0]), ValueError, r"n_components\[1\] must be >= 1"),
        (dict(max_depth=2, group_size=[2, 3], n_components=8), ValueError,
         r"Layer 2: n_components=8 is not a multiple of group_size=3"),
        (dict(alpha=np.nan), ValueError, r"alpha must be finite"),
        (dict(connectivity_alpha=-1.0), ValueError, r"connectivity_alpha must be >= 0"),
        (dict(depth_tol="a"), TypeError, r"depth_tol must be a float"),
        (dict(entropy_estimator="gauss"), ValueError, r"entropy_estimator must be one of"),
        (dict(preprocessing="ZCA"), ValueError,
         r"preprocessing must be one of \['standardize', 'zca', None\]"),
        (dict(zca_epsilon=np.nan), ValueError, r"zca_epsilon must be finite"),
        (dict(image_shape=(3, 3)), ValueError, r"image_shape \(3, 3\) has 9 features but the "
                                               r"data have 16"),
        (dict(image_shape=(4, -4)), ValueError, r"image_shape must be .* positive sizes"),
        (dict(image_shape=(2, 2, 2, 2)), ValueError, r"image_shape must be \(height, width\)"),
        (dict(image_shape=16), ValueError, r"image_shape must be \(height, width\)"),
        (dict(image_shape="4x4"), TypeError, r"image_shape must be a tuple of ints"),
        (dict(image_shape=(4, 4.0)), TypeError, r"image_shape must be a tuple of ints"),
        (dict(pooling="avg"), ValueError, r"pooling must be one of"),
        (dict(positive_code=1), TypeError, r"positive_code must be True or False"),
        (dict(max_iter=0), ValueError, r"max_iter must be >= 1"),
        (dict(tol=-1.0), ValueError, r"tol must be >= 0"),
        (dict(n_jobs=0), ValueError, r"n_jobs == 0"),
        (dict(verbose=-2), ValueError, r"verbose must be >= 0"),
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
