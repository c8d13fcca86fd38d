"""
Output entropy against downstream accuracy
==========================================

The efficient coding principle behind :class:`~sklearn_structlearn.DeepStructureLearner`
says that a layer whose outputs carry more information (higher *output entropy*)
should also be a better input for a classifier. This example tests that claim
directly: over a grid of code penalties ``alpha`` and layer widths, it learns one
layer on unlabeled images, measures the output entropy with
:func:`~sklearn_structlearn.output_entropy` (the estimator the depth rule uses)
and the test accuracy of a :class:`~sklearn.linear_model.LogisticRegression`
trained on the outputs, and reports the Spearman rank correlation between the two
-- whatever it turns out to be.

Data: scikit-learn's 8x8 digits and, when the Debian package
``dataset-fashion-mnist`` is installed, Fashion-MNIST.

Set ``STRUCTLEARN_EXAMPLE_SMALL=1`` for a quick run on tiny subsets and
``STRUCTLEARN_EXAMPLE_OUT`` to the directory where the figures are saved
(default: the current directory).
"""

# %%
# Settings
# --------
# The size knob keeps the example runnable in seconds in the test suite and in
# the documentation build; the default size is what the results page reports.
import os
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import spearmanr
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_structlearn import DeepStructureLearner, output_entropy
from sklearn_structlearn.datasets import (
    fashion_mnist_available,
    load_digits_images,
    load_fashion_mnist,
)

SMALL = os.environ.get("STRUCTLEARN_EXAMPLE_SMALL", "0") not in ("", "0")
OUT = Path(os.environ.get("STRUCTLEARN_EXAMPLE_OUT", "."))
OUT.mkdir(parents=True, exist_ok=True)

# Multiples of the "auto" code penalty; 1.0 comes first because it resolves "auto".
ALPHA_FACTORS = (1.0, 4.0) if SMALL else (1.0, 0.5, 2.0, 4.0)
# Number of pooled outputs (groups of 4 units); the layer has 4x as many units.
WIDTHS = {"digits": (8,) if SMALL else (8, 16, 32),
          "fashion": (8,) if SMALL else (8, 16, 32)}
MAX_ITER = 2 if SMALL else 10
# A capped number of iterations is part of the budget here, not a problem to report.
warnings.filterwarnings("ignore", category=ConvergenceWarning)


def load(name):
    """Train/test split of one data set, image shape."""
    if name == "digits":
        X, y = load_digits_images()
        if SMALL:
            X, y = X[:300], y[:300]
        shape = (8, 8)
    else:
        X, y = load_fashion_mnist(subset="all", n_samples=200 if SMALL else 2000,
                                  random_state=0)
        shape = (28, 28)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0)
    return X_train, X_test, y_train, y_test, shape


datasets = ["digits"] + (["fashion"] if fashion_mnist_available() else [])
if len(datasets) == 1:
    print("Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist): digits only.")

# %%
# The grid
# --------
# For every width, the "auto" code penalty (the one that activates about a quarter
# of the groups) is resolved by a first fit; the grid then multiplies it by the
# factors above. The connectivity penalty stays "auto" (it is tied to the code cost).
results = {}
for name in datasets:
    X_train, X_test, y_train, y_test, shape = load(name)
    rows = []
    for width in WIDTHS[name]:
        base = None
        for factor in ALPHA_FACTORS:
            params = dict(max_depth=1, n_components=4 * width, group_size=4,
                          max_iter=MAX_ITER, random_state=0)
            start = time.perf_counter()
            if base is None:
                # factor 1.0: the data-scaled "auto" penalty, resolved by the learner.
                learner = DeepStructureLearner(alpha="auto", **params).fit(X_train)
                base = learner.layers_[0].alpha_
            else:
                learner = DeepStructureLearner(alpha=factor * base, **params).fit(X_train)
            Z_train, Z_test = learner.transform(X_train), learner.transform(X_test)
            entropy = output_entropy(Z_train)
            clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
            accuracy = clf.fit(Z_train, y_train).score(Z_test, y_test)
            rows.append((width, factor, entropy, accuracy))
            print(f"{name:8s} width {width:3d} alpha x{factor:<4g} entropy {entropy:7.1f} bits"
                  f"  accuracy {accuracy:.3f}  ({time.perf_counter() - start:.1f} s)")
    results[name] = np.array(rows)

# %%
# Rank correlation and picture
# ----------------------------
# Spearman's rho over all settings of a data set, and within each width (where
# the entropy can only change through the penalty).
fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4.2),
                         squeeze=False, layout="constrained")
for ax, name in zip(axes[0], datasets):
    rows = results[name]
    rho, pvalue = spearmanr(rows[:, 2], rows[:, 3])
    print(f"{name}: Spearman rho(entropy, accuracy) over all {len(rows)} settings = "
          f"{rho:+.3f} (p = {pvalue:.2g})")
    for width in np.unique(rows[:, 0]):
        sel = rows[:, 0] == width
        if sel.sum() > 2:
            rho_w = spearmanr(rows[sel, 2], rows[sel, 3])[0]
            print(f"    width {int(width):3d}: rho = {rho_w:+.3f}")
        curve = rows[sel][np.argsort(rows[sel, 2])]  # by entropy, so the line reads left to right
        ax.plot(curve[:, 2], curve[:, 3], "o-", label=f"{int(width)} outputs")
        for entropy, accuracy, factor in zip(curve[:, 2], curve[:, 3], curve[:, 1]):
            ax.annotate(f"x{factor:g}", (entropy, accuracy), fontsize=7,
                        textcoords="offset points", xytext=(3, 3))
    ax.set_xlabel("output entropy (bits, binned estimator)")
    ax.set_ylabel("test accuracy of LogisticRegression")
    ax.set_title(f"{name}: Spearman rho = {rho:+.2f}")
    ax.legend(fontsize=8)
fig.savefig(OUT / "entropy_vs_accuracy.png", dpi=100)
