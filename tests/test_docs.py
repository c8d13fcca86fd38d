"""The documentation builds strictly: no warning, no broken reference (``sphinx -n -W``).

Built from a copy of ``doc/`` (autosummary and the gallery write their pages next to the
sources), offline (intersphinx reads the inventories in ``doc/_inventories``), with the
example gallery's pages generated but the examples not run (``plot_gallery=0``):
``tests/test_examples.py`` runs them.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_docs_build_strict(tmp_path):
    for module in ("sphinx", "numpydoc", "sphinx_gallery", "pydata_sphinx_theme", "myst_parser"):
        pytest.importorskip(module, reason="the doc extra: pip install -e '.[doc]'")
    shutil.copytree(ROOT / "doc", tmp_path / "doc",
                    ignore=shutil.ignore_patterns("_build", "generated", "auto_examples",
                                                  "sg_execution_times.rst"))
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    (tmp_path / "benchmarks").mkdir()
    shutil.copy(ROOT / "benchmarks" / "RESULTS.md", tmp_path / "benchmarks")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-n", "-W", "--keep-going", "-q",
         "-D", "plot_gallery=0", "-b", "html", "doc", "doc/_build/html"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    assert (tmp_path / "doc" / "_build" / "html" / "architecture.html").exists()
