"""Progress reports of long fits: log lines on stdout (verbose >= 1), a tqdm bar on stderr
when tqdm is installed (optional) and stderr is watched live, nothing at verbose=0."""

import re
import sys

import numpy as np
import pytest

from sklearn_structlearn import DeepStructureLearner, GroupSparseCodingLayer
from sklearn_structlearn import _progress
from sklearn_structlearn._progress import Progress
from sklearn_structlearn.datasets import load_digits_images, make_planted_structure

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def data():
    return make_planted_structure(n_samples=200, n_features=16, n_components=8, group_size=2,
                                  fan_in=4, active_groups=1, noise=0.01, random_state=0).X


@pytest.fixture(scope="module")
def digits():
    return load_digits_images()[0][:300]


@pytest.fixture
def no_tqdm(monkeypatch):
    """Make ``import tqdm`` fail, as on an installation without the progress extra."""
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)


@pytest.fixture
def terminal(monkeypatch):
    """stderr as on a terminal (pytest captures it, so it is not one), with tqdm."""
    pytest.importorskip("tqdm")
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setattr(_progress, "_watched_live", lambda stream: True)


def layer(**params):
    return GroupSparseCodingLayer(n_components=8, group_size=2, alpha=0.2, max_iter=3, tol=0.0,
                                  random_state=0, **params)


def test_layer_reports_every_iteration_with_objective_and_time(data, capsys, no_tqdm):
    layer(verbose=1).fit(data)
    out, err = capsys.readouterr()
    lines = [line for line in out.splitlines() if " iter " in line]
    assert len(lines) == 3
    for k, line in enumerate(lines, start=1):
        assert re.search(rf"iter {k}/3 objective \d\.\d+e[+-]\d+ .* time \d+\.\d+s", line), line
    assert err == ""  # no tqdm: no bar, and nothing else on stderr


def test_tqdm_bar_when_installed(data, capsys, terminal):
    layer(verbose=1).fit(data)
    out, err = capsys.readouterr()
    assert len([line for line in out.splitlines() if " iter " in line]) == 3  # lines kept
    assert "GroupSparseCodingLayer" in err and "3/3" in err and "objective=" in err
    # online fit: one bar step per epoch
    layer(verbose=1, batch_size=50).fit(data)
    out, err = capsys.readouterr()
    assert "epoch 3/3" in out
    assert "GroupSparseCodingLayer (online)" in err and "3/3" in err


def test_tqdm_disable_keeps_the_lines(data, capsys, monkeypatch, terminal):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    layer(verbose=1).fit(data)
    out, err = capsys.readouterr()
    assert len([line for line in out.splitlines() if " iter " in line]) == 3
    assert "3/3" not in err


def test_verbose_zero_is_silent(data, digits, capsys):
    layer(verbose=0).fit(data)
    DeepStructureLearner(max_depth=2, n_components=8, max_iter=2, random_state=0).fit(digits)
    DeepStructureLearner(max_depth=1, n_components=8, random_state=0).fit_stream(
        np.array_split(digits, 3), n_passes=1, n_held=100)
    assert capsys.readouterr() == ("", "")


def test_deep_learner_reports_every_layer(digits, capsys, no_tqdm):
    DeepStructureLearner(max_depth=2, n_components=8, group_size=4, depth_tol=-np.inf,
                         max_iter=2, verbose=1, random_state=0).fit(digits)
    out = capsys.readouterr().out
    assert re.search(r"layer 1: 64 inputs -> 8 units .* kept \[\d+\.\d+s\]", out)
    assert re.search(r"layer 2: 2 inputs -> 8 units .* kept \[\d+\.\d+s\]", out)
    assert re.search(r"depth 2 \(max_depth\), total \d+\.\d+s", out)
    assert " iter " not in out  # the layers' own lines only at verbose >= 2
    DeepStructureLearner(max_depth=1, n_components=8, max_iter=2, verbose=2,
                         random_state=0).fit(digits)
    assert "[GroupSparseCodingLayer] iter 1/2" in capsys.readouterr().out


def test_fit_stream_reports_the_stream_and_every_pass(digits, capsys, terminal):
    DeepStructureLearner(max_depth=1, n_components=8, verbose=1, random_state=0).fit_stream(
        np.array_split(digits, 3), n_passes=2, n_held=100)
    out, err = capsys.readouterr()
    assert "stream: 300 rows x 64 features in 3 batches, held sample 100 rows" in out
    assert re.search(r"layer 1 pass 1/2: surrogate objective .* after 4 batches", out)
    assert re.search(r"layer 1 pass 2/2: surrogate objective .* after 7 batches", out)
    assert "DeepStructureLearner layer 1" in err and "6/6" in err  # 2 passes x 3 batches
    assert "1/1" in err  # the bar over the layers


def test_no_bar_unless_stderr_is_watched_live(data, capsys, monkeypatch):
    # a file or a pipe would fill with the bar's carriage-return redraws
    pytest.importorskip("tqdm")
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert not _progress._watched_live(sys.stderr)  # pytest's capture is not a terminal
    layer(verbose=1).fit(data)
    out, err = capsys.readouterr()
    assert len([line for line in out.splitlines() if " iter " in line]) == 3  # lines kept
    assert err == ""
    assert not Progress(2, desc="x", verbose=1).enabled


def test_watched_live_means_a_terminal(tmp_path):
    class Terminal:
        def isatty(self):
            return True

    assert _progress._watched_live(Terminal())
    with open(tmp_path / "log.txt", "w") as log:
        assert not _progress._watched_live(log)  # a file
    assert not _progress._watched_live(log)  # closed: isatty raises ValueError
    assert not _progress._watched_live(object())  # no isatty at all


def test_progress_object(terminal):
    with Progress(2, desc="x", verbose=0) as bar:
        bar.update(objective=1.0)
    assert not bar.enabled
    bar = Progress(2, desc="x", verbose=1)
    assert bar.enabled
    bar.update(objective=0.5)
    bar.close()
    assert not bar.enabled
    bar.close()  # closing twice is harmless
