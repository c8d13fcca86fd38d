"""Write the intersphinx inventories of numpy, scipy, scikit-learn, torch and matplotlib.

The documentation links to these projects' API pages, but the build machine has no
internet, so their ``objects.inv`` cannot be downloaded at build time. This script
writes equivalent inventories from the *installed* packages: every public class and
function of the listed modules (and the public methods of their classes), with the
URL pattern of each project's documentation. The files are committed next to this
script; ``doc/conf.py`` reads them (``intersphinx_mapping``), and the links point to
the projects' online documentation. Re-run it after upgrading these packages::

    python doc/_inventories/make_inventories.py

A name missing here (a new function the docs start citing) fails the strict build
(``-n``), which is the signal to add its module below.
"""

import importlib
import inspect
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

# project -> (package, documented modules, URL of an object's page, overrides)
PROJECTS = {
    "numpy": ("numpy", ["numpy", "numpy.linalg", "numpy.random", "numpy.fft", "numpy.ma"],
              "reference/generated/{name}.html#{name}", {}),
    "scipy": ("scipy", ["scipy.sparse", "scipy.sparse.linalg", "scipy.linalg", "scipy.special",
                        "scipy.stats", "scipy.spatial", "scipy.optimize"],
              "reference/generated/{name}.html#{name}", {}),
    "sklearn": ("sklearn", None, "modules/generated/{name}.html#{name}", {}),
    "torch": ("torch", ["torch", "torch.nn", "torch.nn.functional", "torch.optim",
                        "torch.utils.data", "torch.linalg", "torch.export", "torch.onnx"],
              "generated/{name}.html#{name}",
              {"torch.dtype": "tensor_attributes.html#torch.dtype",
               "torch.device": "tensor_attributes.html#torch.device",
               "torch.Tensor": "tensors.html#torch.Tensor",
               "torch.utils.data.DataLoader": "data.html#torch.utils.data.DataLoader",
               "torch.utils.data.Dataset": "data.html#torch.utils.data.Dataset"}),
    "matplotlib": ("matplotlib", ["matplotlib.figure", "matplotlib.axes", "matplotlib.pyplot"],
                   "api/_as_gen/{name}.html#{name}", {}),
}


def _sklearn_modules():
    import sklearn

    names = ["sklearn"] + [f"sklearn.{m}" for m in sklearn.__all__ if not m.startswith("_")]
    names += ["sklearn.base", "sklearn.utils", "sklearn.feature_extraction.image",
              "sklearn.feature_extraction.text", "sklearn.utils.validation",
              "sklearn.utils.extmath"]
    return names


def _public_names(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in dir(module) if not n.startswith("_")]
    return [n for n in names if not n.startswith("_")]


def _entries(package, modules):
    """(name, role) of the public classes, functions and methods of ``modules``."""
    entries = {}
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        entries[module_name] = "module"
        for attr in _public_names(module):
            try:
                obj = getattr(module, attr)
            except Exception:  # e.g. scikit-learn's experimental names raise ImportError
                continue
            name = f"{module_name}.{attr}"
            if inspect.ismodule(obj):
                continue
            if inspect.isclass(obj):
                entries.setdefault(name, "class")
                for method, value in vars(obj).items():
                    if not method.startswith("_") and callable(value):
                        entries.setdefault(f"{name}.{method}", "method")
            elif callable(obj):
                entries.setdefault(name, "function")
    return entries


def write_inventory(project, version, entries, url, overrides):
    lines = []
    for name, role in sorted(entries.items()):
        if role == "module":
            continue  # module pages have no regular URL pattern
        if role == "method":
            owner = name.rsplit(".", 1)[0]
            uri = overrides.get(name, url.format(name=owner).split("#")[0] + f"#{name}")
        else:
            uri = overrides.get(name, url.format(name=name))
        lines.append(f"{name} py:{role} 1 {uri} -")
    header = (f"# Sphinx inventory version 2\n# Project: {project}\n# Version: {version}\n"
              "# The remainder of this file is compressed using zlib.\n").encode()
    body = zlib.compress(("\n".join(lines) + "\n").encode(), 9)
    (HERE / f"{project}.inv").write_bytes(header + body)
    return len(lines)


def main():
    for project, (package, modules, url, overrides) in PROJECTS.items():
        root = importlib.import_module(package)
        if modules is None:
            modules = _sklearn_modules()
        count = write_inventory(project, root.__version__, _entries(package, modules), url,
                                overrides)
        print(f"{project} {root.__version__}: {count} objects")


if __name__ == "__main__":
    main()
