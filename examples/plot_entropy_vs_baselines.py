"""
Does sparse coding raise the output entropy?
============================================

The package's premise is that sparse coding is a practical way to raise the
entropy of a layer's outputs: units that are rarely active and decorrelated
spread the information over many outputs. This example compares, at the *same
number of outputs*, the entropy of

- a layer learned by :class:`~sklearn_structlearn.DeepStructureLearner`
  (pooled group outputs),
- the top principal components (:class:`~sklearn.decomposition.PCA`),
- Gaussian random projections
  (:class:`~sklearn.random_projection.GaussianRandomProjection`),
- the raw inputs: the same number of pixels, those of largest variance,

on digits, natural image patches and (when installed) Fashion-MNIST.

Two estimators are shown, because they answer different questions:

- ``"binned"`` (the one the depth rule uses) sums the discrete entropy of each
  output over a zero bin and 10 equal-frequency bins. A dense continuous output
  always scores ``log2(10) = 3.32`` bits whatever it encodes; a sparse output
  active with probability ``p`` scores ``h2(p) + p log2(10)``, less unless it is
  active most of the time;
- ``"knn"`` (Kozachenko-Leonenko) estimates the *joint* differential entropy of
  the standardised outputs, so it sees redundancy between outputs (correlated
  outputs have a lower joint entropy) but is scale-dependent, hence the
  standardisation. It assumes continuous outputs: outputs with many exactly equal
  values (the zeros of a sparse code, saturated background pixels) are point
  masses, whose differential entropy is minus infinity, and the estimate goes
  strongly negative.

The printed table is the result, whichever way it goes.

Set ``STRUCTLEARN_EXAMPLE_SMALL=1`` for a quick run on tiny subsets and
``STRUCTLEARN_EXAMPLE_OUT`` to the directory where the figures are saved.
"""

# %%
# Settings and data
# -----------------
import os
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.random_projection import GaussianRandomProjection

from sklearn_structlearn import DeepStructureLearner, output_entropy
from sklearn_structlearn.datasets import (
    extract_image_patches,
    fashion_mnist_available,
    load_digits_images,
    load_fashion_mnist,
)

SMALL = os.environ.get("STRUCTLEARN_EXAMPLE_SMALL", "0") not in ("", "0")
OUT = Path(os.environ.get("STRUCTLEARN_EXAMPLE_OUT", "."))
OUT.mkdir(parents=True, exist_ok=True)
# A capped number of iterations is part of the budget here, not a problem to report.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

N_OUTPUTS = 8 if SMALL else 32  # outputs of every representation (groups of 4 units)
MAX_ITER = 2 if SMALL else 20

data = {"digits": load_digits_images()[0][: 200 if SMALL else None],
        "patches 12x12": extract_image_patches((12, 12), n_patches=200 if SMALL else 5000,
                                               random_state=0)}
if fashion_mnist_available():
    data["fashion-mnist"] = load_fashion_mnist(n_samples=200 if SMALL else 3000,
                                               random_state=0)[0]
else:
    print("Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist): skipped.")


def representations(X):
    """Outputs of every representation, all with N_OUTPUTS columns."""
    learner = DeepStructureLearner(max_depth=1, n_components=4 * N_OUTPUTS, group_size=4,
                                   max_iter=MAX_ITER, random_state=0)
    top_variance = np.argsort(X.var(axis=0))[::-1][:N_OUTPUTS]
    return {
        "sparse coding (learned layer)": learner.fit_transform(X),
        "PCA": PCA(N_OUTPUTS, random_state=0).fit_transform(X),
        "random projection": GaussianRandomProjection(N_OUTPUTS, random_state=0)
        .fit_transform(X),
        "raw pixels (top variance)": X[:, top_variance],
    }


# %%
# Entropies
# ---------
table = {}
for name, X in data.items():
    for method, Z in representations(X).items():
        binned = output_entropy(Z)
        knn = output_entropy(StandardScaler().fit_transform(Z), estimator="knn",
                             random_state=0)
        active = float(np.mean(np.abs(Z) > 1e-10))
        table[name, method] = (binned, knn, active)

methods = list(dict.fromkeys(m for _, m in table))
print(f"{N_OUTPUTS} outputs per representation; entropy in bits "
      "(binned: sum over outputs; knn: joint, standardised outputs)")
print("| data | representation | binned entropy | knn joint entropy | fraction active |")
print("|---|---|---|---|---|")
for (name, method), (binned, knn, active) in table.items():
    print(f"| {name} | {method} | {binned:.1f} | {knn:.1f} | {active:.2f} |")
for name in data:
    best = max(methods, key=lambda m: table[name, m][0])
    best_knn = max(methods, key=lambda m: table[name, m][1])
    print(f"{name}: highest binned entropy: {best}; highest knn entropy: {best_knn}")

# %%
# Picture
# -------
fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
names = list(data)
width = 0.8 / len(methods)
for column, (ax, label) in enumerate(zip(axes, ["binned entropy (bits, sum over outputs)",
                                               "knn joint entropy (bits, standardised)"])):
    for i, method in enumerate(methods):
        values = [table[name, method][column] for name in names]
        ax.bar(np.arange(len(names)) + i * width, values, width, label=method)
    ax.set_xticks(np.arange(len(names)) + width * (len(methods) - 1) / 2, names)
    ax.set_ylabel(label)
axes[0].legend(fontsize=8)
fig.suptitle(f"Output entropy at equal width ({N_OUTPUTS} outputs)")
fig.savefig(OUT / "entropy_vs_baselines.png", dpi=100)
