"""Tests of the ``sklearn-structlearn`` command line (small, fast fits)."""

import shutil
import subprocess
import sys

import joblib
import numpy as np
import pytest

from sklearn_structlearn import DeepStructureLearner
from sklearn_structlearn.cli import build_parser, load_data, main

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = ["--n-components", "16", "--max-iter", "5", "--n-samples", "300"]


def test_learn_digits_writes_summary_model_and_pictures(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "digits"
    status = main(["learn", "--data", "digits", "--out", str(out), "--max-depth", "2", *FAST])
    assert status == 0
    printed = capsys.readouterr().out
    for text in ("data: scikit-learn digits, 300 images of 8x8", "depth", "layer 1",
                 "entropy (bits)", "locality", "wrote:"):
        assert text in printed
    for name in ("summary.txt", "model.joblib", "entropy_vs_depth.png",
                 "connectivity_layer1.png", "receptive_fields_layer1.png"):
        assert (out / name).stat().st_size > 0
    model = joblib.load(out / "model.joblib")
    assert isinstance(model, DeepStructureLearner)
    assert model.image_shape_ == (8, 8, 1)
    for depth in range(1, model.n_layers_ + 1):
        assert (out / f"receptive_fields_layer{depth}.png").exists()
    X, _, _ = load_data("digits", n_samples=20)
    assert model.transform(X).shape[0] == 20
    assert "DeepStructureLearner: depth" in (out / "summary.txt").read_text()


def test_learn_from_npy_images_infers_image_shape(tmp_path):
    rng = np.random.RandomState(0)
    images = rng.rand(120, 6, 6).astype(np.float32)
    path = tmp_path / "images.npy"
    np.save(path, images)
    out = tmp_path / "npy"
    assert main(["learn", "--data", str(path), "--out", str(out), "--max-depth", "1",
                 "--n-components", "8", "--max-iter", "3", "--no-plots", "-q"]) == 0
    model = joblib.load(out / "model.joblib")
    assert model.image_shape_ == (6, 6, 1)
    assert model.n_features_in_ == 36
    assert not (out / "entropy_vs_depth.png").exists()


def test_learn_from_csv_with_header(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.rand(80, 10)
    path = tmp_path / "table.csv"
    header = ",".join(f"f{i}" for i in range(10))
    np.savetxt(path, X, delimiter=",", header=header, comments="")
    out = tmp_path / "csv"
    assert main(["learn", "--data", str(path), "--out", str(out), "--max-depth", "2",
                 "--n-components", "8,4", "--group-size", "2", "--alpha", "auto,0.1",
                 "--preprocessing", "standardize", "--max-iter", "3", "--no-plots",
                 "-q"]) == 0
    model = joblib.load(out / "model.joblib")
    assert model.n_features_in_ == 10
    assert model.image_shape_ is None  # 10 features: not a square image
    assert model.get_params()["n_components"] == [8, 4]


def test_load_data_subsamples_and_checks(tmp_path):
    X, shape, text = load_data("digits", n_samples=50, random_state=0)
    assert X.shape == (50, 64) and shape == (8, 8) and "50 images" in text
    path = tmp_path / "flat.npy"
    np.save(path, np.zeros((10, 12)))
    with pytest.raises(ValueError, match="--image-shape 5x5 has 25 pixels"):
        load_data(str(path), image_shape=(5, 5))
    bad = tmp_path / "data.txt"
    bad.write_text("1,2\n")
    with pytest.raises(ValueError, match=r"\.npy or \.csv"):
        load_data(str(bad))


def test_errors_are_reported_with_status_2(tmp_path, capsys):
    status = main(["learn", "--data", str(tmp_path / "missing.npy"), "--out", str(tmp_path)])
    assert status == 2
    assert "neither one of digits, fashion-mnist nor an existing file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["learn", "--data", "digits", "--out", "x",
                                   "--image-shape", "abc"])
    with pytest.raises(SystemExit):
        main([])  # a command is required


def test_console_script_is_installed(tmp_path):
    script = shutil.which("sklearn-structlearn") or str(
        __import__("pathlib").Path(sys.executable).with_name("sklearn-structlearn"))
    if not __import__("os").path.exists(script):
        pytest.skip("console script not installed (package not installed with pip)")
    result = subprocess.run([script, "learn", "--help"], capture_output=True, text=True,
                            check=True)
    assert "--data" in result.stdout and "--max-depth" in result.stdout
