"""The docstrings of the public API: their examples run, their sections are well formed.

- Every ``>>>`` example of the public modules runs as a doctest (``ELLIPSIS`` and
  ``NORMALIZE_WHITESPACE``), one test per docstring, so a broken example names itself.
- ``numpydoc.validate`` checks the sections of the public classes, their public
  methods and the public functions, with the small ignore list below.
- Every public class and function (not method) has an ``Examples`` section.
"""

import doctest
import importlib
import inspect

import pytest

from sklearn_structlearn.datasets import fashion_mnist_available

# Modules whose docstrings are the public documentation, and what each needs.
PUBLIC_MODULES = {
    "sklearn_structlearn.layer": None,
    "sklearn_structlearn.deep": None,
    "sklearn_structlearn.encoding": None,
    "sklearn_structlearn.penalties": None,
    "sklearn_structlearn.preprocessing": None,
    "sklearn_structlearn.entropy": None,
    "sklearn_structlearn.objective": None,
    "sklearn_structlearn.datasets": None,
    "sklearn_structlearn.structure": None,
    "sklearn_structlearn.topology": None,
    "sklearn_structlearn.sharing": None,
    "sklearn_structlearn.plotting": "matplotlib",
    "sklearn_structlearn.classifier": "torch",
    "sklearn_structlearn.export._build": "torch",
    "sklearn_structlearn.export._reference": None,
    "sklearn_structlearn.export._modules": "torch",
    "sklearn_structlearn.export._shared": "torch",
    "sklearn_structlearn.distributed": "dask",
    "sklearn_structlearn.exceptions": None,
}

# Docstrings that read the Fashion-MNIST files (skipped when the Debian package
# dataset-fashion-mnist is not installed).
NEEDS_FASHION = {"sklearn_structlearn.datasets.load_fashion_mnist"}

OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

# numpydoc checks not enforced, for every object:
# - ES01 (no extended summary) and SA01 (no See Also): optional sections, written
#   where they add something;
# - RT02 (the Returns line has a name and a type): scikit-learn's convention names the
#   returned values (``X_new : ndarray of shape ...``);
# - SA03 (See Also descriptions capitalised): cosmetic.
IGNORED_CHECKS = {"ES01", "SA01", "RT02", "SA03"}
# Methods document their behaviour in the class docstring's example; numpydoc's
# "no Examples section" (EX01) is not enforced on methods.
IGNORED_FOR_METHODS = {"EX01"}
# Per-object exceptions, each with its reason.
IGNORED_PER_OBJECT = {
    # A frozen dataclass built with ``from_components``: its fields are documented as
    # Attributes, not as constructor Parameters.
    "sklearn_structlearn.structure.LayerStructure": {"PR01"},
}


def _has(module_name):
    try:
        importlib.import_module(module_name)
    except ImportError:
        return False
    return True


def _doctests():
    finder = doctest.DocTestFinder(exclude_empty=True)
    params = []
    for module_name, requirement in PUBLIC_MODULES.items():
        if requirement is not None and not _has(requirement):
            # The module (or its examples) cannot even be imported without it.
            params.append(pytest.param(None, id=module_name,
                                       marks=pytest.mark.skip(reason=f"needs {requirement}")))
            continue
        module = importlib.import_module(module_name)
        for test in finder.find(module, module_name):
            if not test.examples:
                continue
            marks = [pytest.mark.torch] if requirement == "torch" else []
            if test.name in NEEDS_FASHION:
                marks.append(pytest.mark.fashion)
                if not fashion_mnist_available():
                    marks.append(pytest.mark.skip(reason="Fashion-MNIST not installed"))
            params.append(pytest.param(test, id=test.name, marks=marks))
    return params


@pytest.mark.parametrize("test", _doctests())
def test_docstring_examples_run(test, tmp_path, monkeypatch):
    # Examples that save a file write it into a fresh directory.
    monkeypatch.chdir(tmp_path)
    if _has("matplotlib"):
        import matplotlib

        matplotlib.use("Agg")  # no display needed
    # A copy of the module globals, so one docstring cannot leak names into another.
    test.globs = dict(test.globs)
    report = []
    result = doctest.DocTestRunner(optionflags=OPTIONFLAGS).run(test, out=report.append)
    assert result.failed == 0, "".join(report)


# --------------------------------------------------------------------------- numpydoc
def _public_objects():
    """pytest params (qualified name, is_method) of the public API to validate."""
    import sklearn_structlearn
    from sklearn_structlearn import (
        datasets,
        encoding,
        entropy,
        penalties,
        plotting,
        preprocessing,
        structure,
    )

    names = []
    for name in sklearn_structlearn.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(sklearn_structlearn, name)
        names.append(f"sklearn_structlearn.{name}")
        if inspect.isclass(obj):
            names += [f"sklearn_structlearn.{name}.{attr}" for attr, value in vars(obj).items()
                      if not attr.startswith("_") and callable(value)]
    for module in (datasets, structure, plotting, entropy, encoding, penalties, preprocessing):
        names += [f"{module.__name__}.{name}" for name in module.__all__
                  if callable(getattr(module, name))]
    methods = {n for n in names if n.split(".")[-2][:1].isupper()}
    return [pytest.param(n, n in methods, id=n) for n in names]


@pytest.mark.parametrize("name, is_method", _public_objects())
def test_numpydoc_sections(name, is_method):
    validate = pytest.importorskip("numpydoc.validate").validate
    ignored = IGNORED_CHECKS | IGNORED_PER_OBJECT.get(name, set())
    if is_method:
        ignored = ignored | IGNORED_FOR_METHODS
    errors = [f"{code}: {message}" for code, message in validate(name)["errors"]
              if code not in ignored]
    assert not errors, f"{name}:\n" + "\n".join(errors)


@pytest.mark.parametrize("name, is_method",
                         [p for p in _public_objects() if not p.values[1]])
def test_public_objects_have_examples(name, is_method):
    module_name, _, attr = name.rpartition(".")
    obj = getattr(importlib.import_module(module_name), attr)
    assert ">>>" in (inspect.getdoc(obj) or ""), f"{name} has no runnable Examples"
