"""Tests of the ``sklearn-structlearn`` command line (small, fast fits).

Every flag is exercised once; every bad use must exit with status 2, print ONE line on
stderr, write nothing and never start the fit (``no_fit`` makes a fit fail the test).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import joblib
import numpy as np
import pytest

from sklearn_structlearn import DeepStructureLearner
from sklearn_structlearn import cli
from sklearn_structlearn.cli import build_parser, load_data, main

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = ["--n-components", "16", "--max-iter", "5", "--n-samples", "300"]
TABLE_FAST = ["--n-components", "8", "--max-iter", "3", "--max-depth", "2"]
HEADER = ["alcohol", "malic acid", "ash", "hue", "proline"]


def run(args, capsys):
    """``main(args)`` -> (status, stdout, stderr)."""
    status = main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def no_fit(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the fit started although the command was a bad use")

    monkeypatch.setattr(DeepStructureLearner, "fit", fail)


@pytest.fixture
def table(tmp_path):
    """A CSV file with a header, a text column and a label column."""
    rng = np.random.RandomState(0)
    X = rng.rand(60, 5)
    path = tmp_path / "table.csv"
    lines = [",".join(HEADER + ["name", "label"])]
    lines += [",".join(f"{v:.6f}" for v in row) + f",sample {i},{i % 3}"
              for i, row in enumerate(X)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, X


def assert_bad_use(status, out, err, match, *, nothing_under=None):
    assert status == 2, (out, err)
    assert err.count("\n") == 1, err  # one line
    assert err.startswith("sklearn-structlearn: error: "), err
    assert match in err, err
    if nothing_under is not None:
        assert not any(nothing_under.rglob("*")), sorted(nothing_under.rglob("*"))


# --------------------------------------------------------------------------- images
def test_learn_digits_writes_summary_model_and_pictures(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "digits"
    status, printed, err = run(["learn", "--data", "digits", "--out", str(out),
                                "--max-depth", "2", *FAST], capsys)
    assert status == 0, err
    for text in ("data: scikit-learn digits, 300 images of 8x8", "depth", "layer 1",
                 "entropy (bits)", "locality", f"wrote {out}", "only from a source you trust"):
        assert text in printed
    for name in ("summary.txt", "model.joblib", "entropy_vs_depth.png",
                 "connectivity_layer1.png", "receptive_fields_layer1.png"):
        assert (out / name).stat().st_size > 0
    model = joblib.load(out / "model.joblib")
    assert isinstance(model, DeepStructureLearner)
    assert model.image_shape_ == (8, 8, 1)
    assert getattr(model, "feature_names_in_", None) is None
    for depth in range(1, model.n_layers_ + 1):
        assert (out / f"receptive_fields_layer{depth}.png").exists()
    X, _, _, _ = load_data("digits", n_samples=20)
    assert model.transform(X).shape[0] == 20
    assert "DeepStructureLearner: depth" in (out / "summary.txt").read_text()
    # no staging folder left beside the results
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits"]


@pytest.mark.fashion
def test_fashion_mnist_is_images(tmp_path, capsys):
    from sklearn_structlearn.datasets import fashion_mnist_available

    if not fashion_mnist_available():
        pytest.skip("Fashion-MNIST not installed (Debian package dataset-fashion-mnist)")
    out = tmp_path / "fashion"
    status, printed, err = run(["learn", "--data", "fashion-mnist", "--out", str(out),
                                "--n-samples", "200", "--max-depth", "1", "--n-components",
                                "16", "--max-iter", "2", "--preprocessing", "standardize",
                                "-q"], capsys)
    assert status == 0, err
    assert printed.startswith("data: Fashion-MNIST, 200 training images of 28x28")
    assert joblib.load(out / "model.joblib").image_shape_ == (28, 28, 1)
    assert (out / "receptive_fields_layer1.png").exists()


def test_npy_images_infer_their_shape(tmp_path, capsys):
    images = np.random.RandomState(0).rand(120, 6, 6).astype(np.float32)
    np.save(tmp_path / "images.npy", images)
    out = tmp_path / "npy"
    status, _, err = run(["learn", "--data", str(tmp_path / "images.npy"), "--out", str(out),
                          "--max-depth", "1", "--n-components", "8", "--max-iter", "3",
                          "--no-plots", "-q"], capsys)
    assert status == 0, err
    model = joblib.load(out / "model.joblib")
    assert model.image_shape_ == (6, 6, 1)
    assert model.n_features_in_ == 36
    assert not (out / "entropy_vs_depth.png").exists()  # --no-plots


def test_square_table_is_not_an_image_unless_asked(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    np.save(tmp_path / "square.npy", np.random.RandomState(0).rand(80, 16))
    status, printed, _ = run(["learn", "--data", str(tmp_path / "square.npy"), "--out",
                              str(tmp_path / "table"), *TABLE_FAST], capsys)
    assert status == 0
    assert "a table" in printed and "images" not in printed.split("\n")[0]
    assert joblib.load(tmp_path / "table" / "model.joblib").image_shape_ is None
    assert not list((tmp_path / "table").glob("receptive_fields*"))
    # ... and an image when asked
    status, printed, _ = run(["learn", "--data", str(tmp_path / "square.npy"), "--out",
                              str(tmp_path / "images"), "--image-shape", "4x4",
                              *TABLE_FAST], capsys)
    assert status == 0 and "images of 4x4" in printed
    assert joblib.load(tmp_path / "images" / "model.joblib").image_shape_ == (4, 4, 1)
    assert (tmp_path / "images" / "receptive_fields_layer1.png").exists()


# --------------------------------------------------------------------------- tables
def test_csv_columns_named_through_summary_pictures_and_model(table, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path, X = table
    out = tmp_path / "run"
    status, printed, err = run(["learn", "--data", str(path), "--out", str(out),
                                "--target-column", "label", "--drop", "name",
                                "--preprocessing", "standardize", *TABLE_FAST], capsys)
    assert status == 0, err
    assert ("table.csv, 60 samples x 5 features, a table (target column label left out; "
            "dropped column name left out)") in printed
    model = joblib.load(out / "model.joblib")
    np.testing.assert_array_equal(model.feature_names_in_, HEADER)
    assert model.image_shape_ is None
    summary = (out / "summary.txt").read_text()
    assert "layer 1 inputs by name" in summary and "layer 1 groups" in summary
    for name in HEADER:
        assert f"  {name}" in summary
    assert (out / "connectivity_layer1.png").exists()
    assert not list(out.glob("receptive_fields*"))
    np.testing.assert_allclose(model.preprocess_mean_, X.mean(axis=0), rtol=1e-5)


def test_connectivity_picture_names_the_columns(table, tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    from sklearn_structlearn import plotting

    seen = {}
    real = plotting.plot_connectivity

    def spy(mask, **kwargs):
        seen["input_names"] = kwargs.get("input_names")
        return real(mask, **kwargs)

    monkeypatch.setattr(plotting, "plot_connectivity", spy)
    path, _ = table
    status, _, _ = run(["learn", "--data", str(path), "--out", str(tmp_path / "run"),
                        "--target-column", "label", "--drop", "name", "--max-depth", "1",
                        "--n-components", "8", "--max-iter", "3"], capsys)
    assert status == 0
    assert list(seen["input_names"]) == HEADER


def test_utf8_bom_csv_keeps_its_first_row(tmp_path, capsys):
    rng = np.random.RandomState(1)
    X = rng.rand(30, 3)
    text = "a,b,c\n" + "\n".join(",".join(f"{v:.6f}" for v in row) for row in X) + "\n"
    plain, bom = tmp_path / "plain.csv", tmp_path / "bom.csv"
    plain.write_text(text, encoding="utf-8")
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode())
    for path in (plain, bom):
        loaded, _, description, names = load_data(str(path))
        assert names == ["a", "b", "c"]  # no "\ufeffa"
        np.testing.assert_allclose(loaded, X, atol=1e-6)  # 30 rows, the first one included
    # without a header, the BOM must not turn the first data row into one
    bom.write_bytes(b"\xef\xbb\xbf" + text.split("\n", 1)[1].encode())
    loaded, _, _, names = load_data(str(bom))
    assert names is None and loaded.shape == (30, 3)


def test_csv_without_header_columns_by_position(tmp_path, capsys):
    rows = [f"{i / 10},{i % 7},{i % 2},text{i}" for i in range(40)]
    path = tmp_path / "raw.csv"
    path.write_text("\n".join(rows) + "\n")
    X, shape, description, names = load_data(str(path), target_column="2", drop=["3"])
    assert X.shape == (40, 2) and names is None and shape is None
    assert "target column 2 left out; dropped column 3 left out" in description
    # a text column of a file without header is not a header
    status, _, err = run(["learn", "--data", str(path), "--out", str(tmp_path / "o")], capsys)
    assert_bad_use(status, "", err, "column 3 is not numeric ('text0' on line 1)")


def test_depth_criterion_and_tol(table, tmp_path, capsys):
    path, _ = table
    out = tmp_path / "run"
    status, printed, _ = run(["learn", "--data", str(path), "--out", str(out),
                              "--target-column", "label", "--drop", "name",
                              "--depth-criterion", "entropy", "--depth-tol", "inf",
                              "--transform-algorithm", "lasso",
                              "--alpha", "auto", "--connectivity-alpha", "0.01",
                              "--group-size", "2", "--random-state", "3", "--n-jobs", "1",
                              "--no-plots", *TABLE_FAST], capsys)
    assert status == 0
    model = joblib.load(out / "model.joblib")
    assert model.depth_criterion == "entropy" and model.depth_tol == np.inf
    assert model.transform_algorithm == "lasso"
    assert model.layers_[0].transform_algorithm == "lasso"
    assert model.n_layers_ == 1 and model.stop_reason_ == "entropy_gain"
    assert model.connectivity_alpha == 0.01 and model.group_size == 2
    assert model.random_state == 3 and model.n_jobs == 1
    help_text = build_parser()._subparsers._group_actions[0].choices["learn"].format_help()
    assert "redundancy" in " ".join(help_text.split())  # --depth-tol describes the rule


def test_quiet_prints_the_summary_only(tmp_path, capsys):
    status, printed, _ = run(["learn", "--data", "digits", "--out", str(tmp_path / "q"),
                              "--max-depth", "1", "--no-plots", "-q", *FAST], capsys)
    assert status == 0
    assert printed.startswith("data: scikit-learn digits")
    assert "wrote" not in printed and "[DeepStructureLearner]" not in printed


def test_zero_auto_penalty_is_never_silent():
    model = DeepStructureLearner(max_depth=2, connectivity_alpha=["auto", 0.0])
    model.layers_ = [SimpleNamespace(alpha_=0.3, connectivity_alpha_=0.0),
                     SimpleNamespace(alpha_=0.2, connectivity_alpha_=0.0)]
    lines = cli._zero_penalty_warnings(model)
    # layer 1 asked "auto" and got 0: said; layer 2 asked 0 explicitly: nothing to say
    assert lines == ["warning: the 'auto' connectivity_alpha of layer 1 resolved to 0 on "
                     "these data: the layer is dense (every unit reads every input); pass "
                     "--connectivity-alpha with a positive value to change that"]


def test_zero_auto_penalty_warning_reaches_the_summary(table, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_zero_penalty_warnings", lambda model: ["warning: X"])
    path, _ = table
    status, printed, _ = run(["learn", "--data", str(path), "--out", str(tmp_path / "r"),
                              "--target-column", "label", "--drop", "name", "--no-plots",
                              *TABLE_FAST], capsys)
    assert status == 0 and "warning: X" in printed
    assert "warning: X" in (tmp_path / "r" / "summary.txt").read_text()


# --------------------------------------------------------------------------- the output folder
def _older_run(out):
    out.mkdir()
    for name in ("summary.txt", "model.joblib", "connectivity_layer1.png",
                 "connectivity_layer2.png", "receptive_fields_layer2.png"):
        (out / name).write_text("old")


def test_older_run_is_kept_without_overwrite(tmp_path, capsys, no_fit):
    out = tmp_path / "run"
    _older_run(out)
    status, _, err = run(["learn", "--data", "digits", "--out", str(out)], capsys)
    assert_bad_use(status, "", err, "already holds a run")
    assert "--overwrite" in err
    assert (out / "model.joblib").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_overwrite_replaces_the_older_run_whole(tmp_path, capsys):
    out = tmp_path / "run"
    _older_run(out)
    status, _, err = run(["learn", "--data", "digits", "--out", str(out), "--overwrite",
                          "--max-depth", "1", "--no-plots", "-q", *FAST], capsys)
    assert status == 0, err
    # the old layer-2 pictures are gone: the folder is the new run only
    assert sorted(p.name for p in out.iterdir()) == ["model.joblib", "summary.txt"]
    assert isinstance(joblib.load(out / "model.joblib"), DeepStructureLearner)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_empty_folder_is_used(tmp_path, capsys):
    out = tmp_path / "empty"
    out.mkdir()
    status, _, _ = run(["learn", "--data", "digits", "--out", str(out), "--max-depth", "1",
                        "--no-plots", "-q", *FAST], capsys)
    assert status == 0 and (out / "model.joblib").exists()


def test_new_parents_are_created(tmp_path, capsys):
    out = tmp_path / "a" / "b" / "run"
    status, _, _ = run(["learn", "--data", "digits", "--out", str(out), "--max-depth", "1",
                        "--no-plots", "-q", *FAST], capsys)
    assert status == 0 and (out / "model.joblib").exists()


def test_planted_symlink_is_never_followed(tmp_path, capsys, no_fit):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "run"
    _older_run(out)
    (out / "summary.txt").unlink()
    (out / "summary.txt").symlink_to(victim)
    status, _, err = run(["learn", "--data", "digits", "--out", str(out), "--overwrite"],
                         capsys)
    assert_bad_use(status, "", err, "is not an older run's folder")
    assert victim.read_text() == "precious"
    # --out itself a link to a folder
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    status, _, err = run(["learn", "--data", "digits", "--out", str(link)], capsys)
    assert_bad_use(status, "", err, "is a symbolic link", nothing_under=target)


def test_foreign_folder_is_never_replaced(tmp_path, capsys, no_fit):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    (out / "model.joblib").write_text("old")
    status, _, err = run(["learn", "--data", "digits", "--out", str(out), "--overwrite"],
                         capsys)
    assert_bad_use(status, "", err, "is not an older run's folder (it holds 'notes.txt')")
    assert (out / "notes.txt").read_text() == "keep me"


def _unwritable_parent(tmp_path):
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # root writes anywhere on disk; /proc refuses new folders even to root
        return Path("/proc/sklearn-structlearn-test")
    parent = tmp_path / "read_only"
    parent.mkdir()
    parent.chmod(0o500)
    return parent


@pytest.mark.parametrize("case", ["existing file", "under a file", "unwritable"])
def test_bad_out_is_refused_before_the_fit(tmp_path, capsys, no_fit, case):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    out, match = {
        "existing file": (blocker, "exists and is not a folder"),
        "under a file": (blocker / "run", "which is a file, not a folder"),
        "unwritable": (_unwritable_parent(tmp_path) / "run", "cannot"),
    }[case]
    status, _, err = run(["learn", "--data", "digits", "--out", str(out)], capsys)
    assert_bad_use(status, "", err, match)
    assert blocker.read_text() == "x"
    assert out == blocker or not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"] + (
        ["read_only"] if (tmp_path / "read_only").exists() else [])


def test_failed_fit_writes_nothing(tmp_path, capsys, monkeypatch):
    def bad_fit(self, X, y=None):
        raise ValueError("something the learner refuses")

    monkeypatch.setattr(DeepStructureLearner, "fit", bad_fit)
    out = tmp_path / "new" / "run"
    status, _, err = run(["learn", "--data", "digits", "--out", str(out)], capsys)
    assert_bad_use(status, "", err, "something the learner refuses", nothing_under=tmp_path)
    assert not (tmp_path / "new").exists()  # the parents it created are removed too


def test_interrupted_fit_writes_nothing(tmp_path, capsys, monkeypatch):
    def interrupted(self, X, y=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(DeepStructureLearner, "fit", interrupted)
    status, _, err = run(["learn", "--data", "digits", "--out", str(tmp_path / "run")],
                         capsys)
    assert status == 130 and "interrupted; nothing was written" in err
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- bad data
def _npz_renamed(path):
    np.savez(path.with_suffix(".npz"), X=np.zeros((5, 3)))
    path.with_suffix(".npz").rename(path)


BAD_FILES = {
    # name -> (how to make tmp_path / name, message part)
    "dir.npy": (lambda p: p.mkdir(), "is a directory, not a .npy file"),
    "empty.npy": (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    "renamed.npy": (_npz_renamed, "is a .npz archive"),
    "garbage.npy": (lambda p: p.write_bytes(b"not numpy at all"), "is not a valid .npy array"),
    "objects.npy": (lambda p: np.save(p, np.array([[{"a": 1}]], dtype=object)),
                    "holds Python objects"),
    "strings.npy": (lambda p: np.save(p, np.array([["1.5", "2"]] * 3)),
                    "must hold real numbers, got dtype <U3"),
    "dates.npy": (lambda p: np.save(p, np.zeros((4, 2), dtype="datetime64[s]")),
                  "must hold real numbers, got dtype datetime64[s]"),
    "nan.npy": (lambda p: np.save(p, np.array([[1.0, np.nan]] * 3)), "NaN or infinite"),
    "one_row.npy": (lambda p: np.save(p, np.zeros((1, 4))), "1 samples x 4 features"),
    "no_rows.npy": (lambda p: np.save(p, np.zeros((0, 4))), "0 samples x 4 features"),
    "cube.npy": (lambda p: np.save(p, np.zeros((2, 2, 2, 2, 2))), "shape (2, 2, 2, 2, 2)"),
    "data.txt": (lambda p: p.write_text("1,2\n"), "must be a .npy or .csv file"),
    "dir.csv": (lambda p: p.mkdir(), "is a directory, not a .csv file"),
    "empty.csv": (lambda p: p.write_text(""), "the file is empty"),
    "latin1.csv": (lambda p: p.write_bytes("caf\xe9,b\n1,2\n".encode("latin-1")),
                   "not a readable UTF-8 CSV file"),
    "ragged.csv": (lambda p: p.write_text("a,b\n1,2\n3\n"), "line 3 has 1 fields"),
    "hole.csv": (lambda p: p.write_text("a,b\n1,2\n3,\n"),
                 "column 'b' is not numeric (an empty value on line 3); missing values"),
    "inf.csv": (lambda p: p.write_text("a,b\n1,2\n3,inf\n"), "column 'b' has a non-finite"),
    "dates.csv": (lambda p: p.write_text("a,when\n1,2024-01-01\n2,2024-01-02\n"),
                  "column 'when' is not numeric ('2024-01-01' on line 2); drop it "
                  "(--drop when)"),
    "twice.csv": (lambda p: p.write_text("a,a\n1,2\n"), "column 'a' appears twice"),
    "header_only.csv": (lambda p: p.write_text("a,b\n"), "no data rows"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_data_file(tmp_path, capsys, no_fit, name):
    make, match = BAD_FILES[name]
    data = tmp_path / "data"
    data.mkdir()
    make(data / name)
    out = tmp_path / "out"
    status, _, err = run(["learn", "--data", str(data / name), "--out", str(out)], capsys)
    assert_bad_use(status, "", err, match)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["data"]


@pytest.mark.parametrize("options, match", [
    (["--target-column", "nope"], "--target-column 'nope': no such column (columns: alcohol"),
    (["--drop", "nope"], "--drop 'nope': no such column"),
    ([], "column 'name' is not numeric ('sample 0' on line 2); drop it (--drop name)"),
    (["--drop", "name,nope"], "--drop 'nope': no such column"),
])
def test_bad_column_selection(table, tmp_path, capsys, no_fit, options, match):
    path, _ = table
    status, _, err = run(["learn", "--data", str(path), "--out", str(tmp_path / "o"),
                          *options], capsys)
    assert_bad_use(status, "", err, match)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("options, match", [
    (["--max-depth", "1e9"], "argument --max-depth: 1000000000 is too large: at most 100"),
    (["--max-depth", "1e999"], "argument --max-depth: expected an int, got '1e999'"),
    (["--max-depth", "0"], "argument --max-depth: must be >= 1, got 0"),
    (["--max-iter", "1e9"], "argument --max-iter: 1000000000 is too large: at most 1000000"),
    (["--n-components", "100000000"], "GiB, more than this machine's"),
    (["--n-components", "0"], "argument --n-components: expected a positive int"),
    (["--n-components", "10", "--group-size", "4"], "--n-components 10 is not a multiple"),
    (["--n-components", "8,8", "--max-depth", "3"], "--n-components has 2 per-layer values"),
    (["--alpha", "1,2"], "--alpha has 2 per-layer values but --max-depth is 1"),
    (["--alpha", "nan"], "argument --alpha: expected 'auto', a finite float >= 0"),
    (["--connectivity-alpha", "-0.1"], "argument --connectivity-alpha: expected 'auto'"),
    (["--depth-tol", "nan"], "argument --depth-tol: expected a float"),
    (["--depth-criterion", "accuracy"], "argument --depth-criterion: invalid choice"),
    (["--transform-algorithm", "omp"], "argument --transform-algorithm: invalid choice"),
    (["--n-jobs", "0"], "argument --n-jobs: 0 threads has no meaning"),
    (["--random-state", "-1"], "argument --random-state: must be >= 0, got -1"),
    (["--n-samples", "1"], "argument --n-samples: must be >= 2, got 1"),
    (["--image-shape", "abc"], "argument --image-shape: must look like HxW"),
    (["--image-shape", "28x28"], "--image-shape 28x28 does not match the digits images (8x8)"),
    (["--drop", "x"], "--target-column and --drop select columns of a .csv file"),
    (["--preprocessing", "pca"], "argument --preprocessing: invalid choice"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["--fashion-mnist-path", "/nonexistent"], None),
])
def test_bad_options(tmp_path, capsys, no_fit, options, match):
    data = "digits"
    if options[0] == "--fashion-mnist-path":
        data, match = "fashion-mnist", "dataset-fashion-mnist"
    out = tmp_path / "out"
    status, _, err = run(["learn", "--data", data, "--out", str(out), *options], capsys)
    assert_bad_use(status, "", err, match, nothing_under=tmp_path)


# --------------------------------------------------------------------------- shared weights
SHARED_FAST = ["--shared-weights", "--n-kernels", "4,8", "--kernel-size", "3",
               "--max-iter", "3", "--n-samples", "300"]


def test_learn_shared_weights_from_shuffled_pixels(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from sklearn_structlearn.sharing import SharedWeightLearner

    out = tmp_path / "grid"
    argv = ["learn", "--data", "digits", "--shuffle-pixels", "--out", str(out), *SHARED_FAST]
    status, printed, err = run(argv, capsys)
    assert status == 0, err
    for text in ("300 images of 8x8, pixels shuffled by one fixed permutation",
                 "topology: 64 inputs on a recovered", "layer 1: 1 channels on",
                 "layer 2: 4 channels on", "recovered grid against the true 8x8 grid",
                 "(pixels shuffled first)", f"wrote {out}"):
        assert text in printed
    for name in ("summary.txt", "model.joblib", "topology.png", "kernels_layer1.png"):
        assert (out / name).stat().st_size > 0
    assert not (out / "entropy_vs_depth.png").exists()
    model = joblib.load(out / "model.joblib")
    assert isinstance(model, SharedWeightLearner) and model.n_layers_ == 2
    assert [layer.n_kernels for layer in model.layers_] == [4, 8]
    # the printed score is the saved model's, against the permutation --random-state 0 draws
    from sklearn_structlearn.datasets import permute_pixels

    permutation = permute_pixels(np.zeros((1, 64)), random_state=0)[1]
    scores = model.topology_.recovery((8, 8), permutation)
    assert f"grid: {scores['exact']:.1%} of the pixels at their exact site" in printed
    assert scores["exact"] > 0.5
    # an older run of either kind is a run: replaced with --overwrite, refused without
    status, _, err = run(argv, capsys)
    assert_bad_use(status, "", err, "already holds a run")
    status, _, err = run([*argv, "--overwrite"], capsys)
    assert status == 0, err


@pytest.fixture
def no_shared_fit(monkeypatch):
    from sklearn_structlearn.sharing import SharedWeightLearner

    def fail(*args, **kwargs):
        raise AssertionError("the fit started although the command was a bad use")

    monkeypatch.setattr(SharedWeightLearner, "fit", fail)


@pytest.mark.parametrize("options, match", [
    (["--shared-weights", "--max-depth", "2"], "--max-depth does not apply to --shared-weights"),
    (["--shared-weights", "--n-components", "8"], "--n-components does not apply"),
    (["--shared-weights", "--preprocessing", "zca"], "--preprocessing does not apply"),
    (["--shared-weights", "--transform-algorithm", "lasso"],
     "--transform-algorithm does not apply"),
    (["--n-kernels", "8"], "--n-kernels applies to --shared-weights only"),
    (["--shuffle-pixels"], "--shuffle-pixels applies to --shared-weights only"),
    (["--shared-weights", "--n-kernels", "7", "--group-size", "2"],
     "n_kernels must be multiples of group_size=2, got 7"),
    (["--shared-weights", "--kernel-size", "4"], "kernel_size must be odd, got 4"),
    (["--shared-weights", "--n-kernels", "4,8", "--kernel-size", "3,3,3"], "kernel_size"),
    (["--shared-weights", "--alpha", "0.1,0.2"], "--alpha takes one value with --shared-weights"),
    (["--shared-weights", "--n-kernels", "0"], "argument --n-kernels: expected a positive int"),
    (["--shared-weights", "--n-kernels", "100000000"], "GiB, more than this machine's"),
])
def test_bad_shared_weight_options(tmp_path, capsys, no_fit, no_shared_fit, options, match):
    status, _, err = run(["learn", "--data", "digits", "--out", str(tmp_path / "o"), *options],
                         capsys)
    assert_bad_use(status, "", err, match, nothing_under=tmp_path)


def test_shared_weights_need_single_channel_images(table, tmp_path, capsys, no_shared_fit):
    path, _ = table
    status, _, err = run(["learn", "--data", str(path), "--target-column", "label", "--drop",
                          "name", "--shared-weights", "--out", str(tmp_path / "o")], capsys)
    assert_bad_use(status, "", err, "--shared-weights needs images, a grid to recover")
    colour = tmp_path / "colour.npy"
    np.save(colour, np.random.RandomState(0).rand(10, 6, 6, 3))
    status, _, err = run(["learn", "--data", str(colour), "--shared-weights", "--out",
                          str(tmp_path / "o")], capsys)
    assert_bad_use(status, "", err, "single-channel images; these have 3 channels")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv, match", [
    ([], "the following arguments are required: COMMAND"),
    (["learn", "--data", "digits"], "the following arguments are required: --out"),
    (["learn", "--out", "x"], "the following arguments are required: --data"),
    (["fit"], "invalid choice: 'fit'"),
])
def test_bad_command_line(argv, match, capsys):
    status, _, err = run(argv, capsys)
    assert_bad_use(status, "", err, match)


def test_missing_data_file(tmp_path, capsys):
    status, _, err = run(["learn", "--data", str(tmp_path / "missing.npy"), "--out",
                          str(tmp_path / "out")], capsys)
    assert_bad_use(status, "", err, "is neither one of digits, fashion-mnist nor an existing")


# --------------------------------------------------------------------------- streams
def test_progress_bars_only_on_a_terminal(tmp_path, capsys, monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    status, printed, err = run(["learn", "--data", "digits", "--out", str(tmp_path / "r"),
                                "--max-depth", "2", "--no-plots", *FAST], capsys)
    assert status == 0
    assert "[DeepStructureLearner] layer 1" in printed  # the log lines are kept
    assert "\r" not in printed and "\r" not in err  # captured output is not a terminal
    assert "TQDM_DISABLE" not in os.environ  # restored


def _console_command():
    script = shutil.which("sklearn-structlearn") or str(
        Path(sys.executable).with_name("sklearn-structlearn"))
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-m", "sklearn_structlearn.cli"]


def _env():
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_closed_pipe_does_not_lose_the_fit(tmp_path):
    # sklearn-structlearn learn ... | head -1
    out = tmp_path / "run"
    command = [sys.executable, "-m", "sklearn_structlearn.cli", "learn", "--data", "digits",
               "--out", str(out), "--max-depth", "2", "--no-plots", *FAST]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=_env())
    first = process.stdout.readline()
    process.stdout.close()  # the reader is gone
    _, err = process.communicate(timeout=600)
    assert first.startswith(b"data: scikit-learn digits")
    assert process.returncode == 0, err.decode()
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()
    assert isinstance(joblib.load(out / "model.joblib"), DeepStructureLearner)
    assert (out / "summary.txt").read_text().startswith("data: scikit-learn digits")


def test_output_to_files_has_no_carriage_returns(tmp_path):
    pytest.importorskip("tqdm")
    out = tmp_path / "run"
    env = _env()
    env.pop("TQDM_DISABLE", None)
    with open(tmp_path / "log.txt", "wb") as log, open(tmp_path / "err.txt", "wb") as errors:
        result = subprocess.run(
            [sys.executable, "-m", "sklearn_structlearn.cli", "learn", "--data", "digits",
             "--out", str(out), "--max-depth", "2", "--no-plots", *FAST],
            stdout=log, stderr=errors, env=env, timeout=600)
    assert result.returncode == 0
    log_text = (tmp_path / "log.txt").read_bytes()
    assert b"[DeepStructureLearner] layer 1" in log_text
    assert b"\r" not in log_text and b"\r" not in (tmp_path / "err.txt").read_bytes()


def test_console_script_help():
    result = subprocess.run([*_console_command(), "learn", "--help"], capture_output=True,
                            text=True, env=_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    for flag in ("--data", "--max-depth", "--target-column", "--drop", "--depth-criterion",
                 "--overwrite", "--image-shape"):
        assert flag in result.stdout
