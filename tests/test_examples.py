"""Smoke test of the gallery: every ``examples/plot_*.py`` runs end to end.

Each example runs in its small mode (``STRUCTLEARN_EXAMPLE_SMALL=1``: tiny subsets,
few iterations), in a fresh working directory, with the Agg backend, and must save its
figures as PNG files and print its result. The examples fall back to the digits when
Fashion-MNIST is not installed and skip their torch models without torch, so they run
everywhere; the numbers they print in small mode are not checked (they are noise).
"""

import runpy
import warnings
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"

# example -> (PNG files it must write (glob patterns), text its output must contain)
EXPECTED = {
    "plot_entropy_vs_accuracy.py": (["entropy_vs_accuracy.png"], "Spearman rho"),
    "plot_entropy_vs_baselines.py": (["entropy_vs_baselines.png"], "highest binned entropy"),
    "plot_local_connectivity.py": (["local_connectivity_patches_original.png",
                                    "local_connectivity_patches_shuffled_unpermuted.png",
                                    "local_connectivity_*_shuffled_as_learned.png"],
                                   "locality (shuffled, unpermuted)"),
    "plot_invariance.py": (["invariance.png"], "score learned"),
    "plot_depth_tradeoff.py": (["depth_tradeoff_digits.png"], "depth rule"),
    "plot_accuracy_table.py": (["accuracy_table.png"], "| model | test accuracy"),
    "plot_shared_weights.py": (["shared_weights_topology.png", "shared_weights_kernels.png"],
                               "pixels at their exact site"),
}


def test_every_gallery_example_is_tested():
    found = {path.name for path in EXAMPLES_DIR.glob("plot_*.py")}
    assert found == set(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_in_small_mode(name, tmp_path, monkeypatch, capsys):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setenv("STRUCTLEARN_EXAMPLE_SMALL", "1")
    monkeypatch.setenv("STRUCTLEARN_EXAMPLE_OUT", str(tmp_path / "figures"))
    monkeypatch.chdir(tmp_path)
    # In-process (runpy) rather than a subprocess: the package, its compiled kernels and
    # torch are loaded once for all examples. The examples set warning filters; keep them
    # inside this test.
    with warnings.catch_warnings():
        try:
            runpy.run_path(str(EXAMPLES_DIR / name), run_name="__main__")
        finally:
            plt.close("all")

    pngs, text = EXPECTED[name]
    out = tmp_path / "figures"
    for pattern in pngs:
        files = list(out.glob(pattern))
        written = sorted(p.name for p in out.glob("*"))
        assert files, f"{name} did not write {pattern} (wrote {written})"
        for file in files:
            assert file.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{file.name} is not a PNG"
    assert text in capsys.readouterr().out
    # Nothing is written into the working directory when an output directory is given.
    assert not list(tmp_path.glob("*.png"))
