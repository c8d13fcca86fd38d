"""Persistence: pickle / joblib round trips, exported torch state dicts, and a fitted model
loaded and used in another process that has no Numba cache.
"""

import io
import os
import pickle
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from sklearn_structlearn import DeepStructureLearner, GroupSparseCodingLayer
from sklearn_structlearn.datasets import load_digits_images

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_images()
    return X[:240].astype(np.float64), y[:240]


def _fit(estimator, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(*args)


@pytest.fixture(scope="module")
def estimators(digits):
    X, _ = digits
    return {
        "layer": _fit(GroupSparseCodingLayer(n_components=16, group_size=4, alpha=0.5,
                                             max_iter=5, random_state=0), X),
        "layer_online": _fit(GroupSparseCodingLayer(n_components=16, group_size=2, alpha=0.5,
                                                    pooling="max", batch_size=60, max_iter=3,
                                                    random_state=0), X),
        "layer_raw_codes": _fit(GroupSparseCodingLayer(n_components=8, alpha=0.5,
                                                       pooling=None, positive_code=True,
                                                       max_iter=5, random_state=0), X),
        "learner": _fit(DeepStructureLearner(max_depth=2, n_components=16, group_size=4,
                                             depth_tol=-np.inf, image_shape=(8, 8),
                                             max_iter=3, random_state=0), X),
    }


def _joblib_round_trip(estimator, compress=0):
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer, compress=compress)
    buffer.seek(0)
    return joblib.load(buffer)


ROUND_TRIPS = {
    "pickle": lambda est: pickle.loads(pickle.dumps(est)),
    "pickle_protocol_2": lambda est: pickle.loads(pickle.dumps(est, protocol=2)),
    "joblib": _joblib_round_trip,
    "joblib_compressed": lambda est: _joblib_round_trip(est, compress=3),
}


@pytest.mark.parametrize("round_trip", ROUND_TRIPS)
@pytest.mark.parametrize("name", ["layer", "layer_online", "layer_raw_codes", "learner"])
def test_round_trip_gives_identical_transforms(estimators, digits, name, round_trip):
    X, _ = digits
    original = estimators[name]
    restored = ROUND_TRIPS[round_trip](original)
    assert type(restored) is type(original)
    assert restored.get_params() == original.get_params()
    assert_array_equal(restored.transform(X), original.transform(X))
    assert_array_equal(restored.transform(X.astype(np.float32)),
                       original.transform(X.astype(np.float32)))
    assert_array_equal(restored.get_feature_names_out(), original.get_feature_names_out())
    if name.startswith("layer"):
        codes = original.encode(X)
        assert_array_equal(restored.encode(X), codes)
        assert_array_equal(restored.inverse_transform(codes), original.inverse_transform(codes))
        assert_array_equal(restored.connectivity_, original.connectivity_)
    else:
        assert restored.summary() == original.summary()
        assert_array_equal(restored.entropies_, original.entropies_)


def test_restored_layer_refits_and_continues_like_the_original(estimators, digits):
    X, _ = digits
    original = GroupSparseCodingLayer(n_components=16, group_size=2, alpha=0.5,
                                      random_state=0)
    for lo in range(0, 120, 40):
        original.partial_fit(X[lo:lo + 40])
    # partial_fit continues from the restored state exactly as the original continues
    restored = pickle.loads(pickle.dumps(original))
    for lo in range(120, 240, 40):
        original.partial_fit(X[lo:lo + 40])
        restored.partial_fit(X[lo:lo + 40])
    assert_array_equal(restored.components_, original.components_)
    assert restored.objective_history_ == original.objective_history_
    original = estimators["layer_online"]
    # and a clone of a restored estimator refits to the same model
    assert_array_equal(_fit(clone(pickle.loads(pickle.dumps(original))), X).components_,
                       original.components_)


def test_pickled_unfitted_estimators_stay_unfitted():
    from sklearn.exceptions import NotFittedError

    for estimator in (GroupSparseCodingLayer(), DeepStructureLearner()):
        restored = pickle.loads(pickle.dumps(estimator))
        with pytest.raises(NotFittedError):
            restored.transform(np.zeros((2, 4)))


# --------------------------------------------------------------------------- torch
@pytest.mark.torch
@pytest.mark.parametrize("name", ["layer", "learner"])
@pytest.mark.parametrize("mode", ["exact", "feedforward"])
def test_exported_state_dict_loads_back_identically(estimators, digits, name, mode, tmp_path):
    torch = pytest.importorskip("torch")
    X, _ = digits
    estimator = estimators[name]
    kwargs = {"n_iter": 20} if mode == "exact" else {}
    module = estimator.to_torch(mode=mode, n_classes=3, dtype=torch.float64, **kwargs)
    path = tmp_path / "state.pt"
    torch.save(module.state_dict(), path)
    # a fresh export, with another random head, then the saved state loaded into it
    torch.manual_seed(123)
    fresh = estimator.to_torch(mode=mode, n_classes=3, dtype=torch.float64, **kwargs)
    fresh.load_state_dict(torch.load(path, weights_only=True))
    saved = module.state_dict()
    assert fresh.state_dict().keys() == saved.keys()
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, saved[key]), key
    inputs = torch.from_numpy(X[:50])
    module.eval()
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(fresh(inputs), module(inputs))
    # whole-module pickling too
    clone_module = pickle.loads(pickle.dumps(module))
    with torch.no_grad():
        assert torch.equal(clone_module(inputs), module(inputs))


@pytest.mark.torch
def test_classifier_round_trip(digits):
    pytest.importorskip("torch")
    from sklearn_structlearn import StructuredNetClassifier

    X, y = digits
    from sklearn_structlearn import DeepStructureLearner

    learner = DeepStructureLearner(max_depth=1, n_components=16, group_size=4, max_iter=2)
    clf = _fit(StructuredNetClassifier(learner, max_epochs=2, batch_size=32, random_state=0,
                                       n_jobs=1), X, y)
    for round_trip in ROUND_TRIPS.values():
        restored = round_trip(clf)
        assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
        assert_array_equal(restored.predict(X), clf.predict(X))
        assert restored.module_.training is False


# --------------------------------------------------------------------------- other process
_CHILD = """
import sys, warnings
import joblib
import numpy as np
warnings.simplefilter("error")  # a warning while loading (e.g. version mismatch) fails
models = joblib.load(sys.argv[1])
X = np.load(sys.argv[2])
np.savez(sys.argv[3], **{name: model.transform(X) for name, model in models.items()})
"""


@pytest.mark.slow
def test_joblib_model_transforms_in_another_process_without_numba_cache(
        estimators, digits, tmp_path):
    X, _ = digits
    models = {name: estimators[name] for name in ("layer", "learner")}
    joblib.dump(models, tmp_path / "models.joblib")
    np.save(tmp_path / "X.npy", X)
    cache = tmp_path / "numba_cache"
    cache.mkdir()
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "models.joblib"), str(tmp_path / "X.npy"),
         str(tmp_path / "out.npz")],
        env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out = np.load(tmp_path / "out.npz")
    for name, model in models.items():
        assert_array_equal(out[name], model.transform(X), err_msg=name)


def test_the_package_never_loads_a_model_file_by_itself():
    # the trust model of doc/guarantees.rst: loading a pickle runs code, so nothing in the
    # package loads pickles (np.load only with allow_pickle=False, torch.load only with
    # weights_only=True); users load the models they trust
    import ast
    from pathlib import Path

    import sklearn_structlearn

    for path in Path(sklearn_structlearn.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = node.func.value
            name = f"{getattr(owner, 'id', '?')}.{node.func.attr}"
            keywords = {k.arg: getattr(k.value, "value", None) for k in node.keywords}
            assert name not in ("pickle.load", "pickle.loads", "joblib.load"), (path, name)
            if name == "np.load":
                assert keywords.get("allow_pickle") is False, (path, node.lineno)
            if name == "torch.load":
                assert keywords.get("weights_only") is True, (path, node.lineno)
