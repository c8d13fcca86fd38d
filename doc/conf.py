"""Sphinx configuration of the sklearn-structlearn documentation.

Build (from the repository root, no warning and no broken reference allowed)::

    python -m sphinx -n -W --keep-going -b html doc doc/_build/html

The example gallery runs every ``examples/plot_*.py`` in its small mode
(``STRUCTLEARN_EXAMPLE_SMALL=1``, tiny subsets) so that the build takes a few
minutes; the full-size numbers are on the results page. ``-D plot_gallery=0`` builds
the gallery pages without running the examples (``tests/test_docs.py`` does, since
``tests/test_examples.py`` runs them).

Links to numpy, scipy, scikit-learn, torch and matplotlib go through intersphinx with
inventories read from ``_inventories/`` (generated from the installed packages by
``_inventories/make_inventories.py``): the build needs no internet.
"""

import os
import sys
from pathlib import Path

DOC_DIR = Path(__file__).resolve().parent
# The gallery image scraper lives next to this file (see _sg_scraper.py).
sys.path.insert(0, str(DOC_DIR))

# Examples read these at import time: tiny subsets, figures saved where the
# scraper collects them.
os.environ.setdefault("STRUCTLEARN_EXAMPLE_SMALL", "1")
os.environ.setdefault("STRUCTLEARN_EXAMPLE_OUT", str(DOC_DIR / "_build" / "example_figures"))
os.environ.setdefault("MPLBACKEND", "Agg")

import sklearn_structlearn  # noqa: E402

project = "sklearn-structlearn"
author = "sklearn-structlearn developers"
copyright = "2026, sklearn-structlearn developers"
release = sklearn_structlearn.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
    # gallery pages built in small mode say at their top that they are a quick preview
    "_preview",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.codeobj.json",
                    "auto_examples/*.md5"]
templates_path = ["_templates"]

# API reference: one page per public object, generated from the docstrings.
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False  # autosummary already lists the methods
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Cross-project links, offline: each project's documentation URL with a local inventory.
_INVENTORIES = DOC_DIR / "_inventories"
intersphinx_mapping = {
    name: (url, str(_INVENTORIES / f"{name}.inv"))
    for name, url in {
        "numpy": "https://numpy.org/doc/stable/",
        "scipy": "https://docs.scipy.org/doc/scipy/",
        "sklearn": "https://scikit-learn.org/stable/",
        "torch": "https://docs.pytorch.org/docs/stable/",
        "matplotlib": "https://matplotlib.org/stable/",
    }.items()
}
intersphinx_timeout = 1

# The benchmark results page includes benchmarks/RESULTS.md (markdown tables).
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Only the gallery examples run; learn_structure.py is the README's script.
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"learn_structure\.py|__init__\.py",
    # Figures are collected from the PNG files the examples save (the package's
    # plotting functions build matplotlib Figures outside pyplot).
    "image_scrapers": ("_sg_scraper",),
    "within_subsection_order": "FileNameSortKey",
    # "Examples using X" lists on the API pages.
    "doc_module": ("sklearn_structlearn",),
    "backreferences_dir": "generated/backreferences",
    "download_all_examples": False,
    "plot_gallery": "True",
    "remove_config_comments": True,
}

html_theme = "pydata_sphinx_theme"
html_title = "sklearn-structlearn"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_show_sourcelink = False
