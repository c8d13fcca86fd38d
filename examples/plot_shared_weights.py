"""
A convolutional network found without labels, from shuffled pixels
===================================================================

A CNN is given three priors by its designer: the pixel grid (neighbouring pixels
belong together), weight sharing (the same feature detector at every place) and
pooling over neighbouring places. :class:`~sklearn_structlearn.sharing.SharedWeightLearner`
is given none of them; it finds them in unlabeled images:

1. the **grid**, from the inputs' statistics alone
   (:class:`~sklearn_structlearn.topology.InputTopologyLearner`): here the pixels of
   every image are shuffled first, by one fixed permutation, so the order of the
   inputs says nothing;
2. **shared kernels**, by group sparse coding of the patches of the recovered grid:
   each kernel is a family of units, one per place, with one weight vector;
3. **pooling** of each family over neighbouring places, and a second layer learned on
   the pooled maps.

:class:`~sklearn_structlearn.StructuredNetClassifier` then trains the network with the
labels (the learned kernels are its starting weights, the learned masks stay). A CNN
fed the shuffled images has the wrong grid; the learned network is the same on
shuffled and original pixels, up to a symmetry of the grid -- its accuracy should not
move (``benchmarks/RESULTS.md`` section 10: 60,000 Fashion-MNIST images, the learned
network ties the small CNN on the original pixels and keeps its accuracy on shuffled
ones, where the CNN loses 4 points).

Data: Fashion-MNIST when installed, digits otherwise. Needs torch for the training
(the pictures are drawn without it).

Set ``STRUCTLEARN_EXAMPLE_SMALL=1`` for a quick run on tiny subsets and
``STRUCTLEARN_EXAMPLE_OUT`` to the directory where the figures are saved.
"""

# %%
# Settings and data
# -----------------
import os
import time
import warnings
from pathlib import Path

from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from sklearn_structlearn import StructuredNetClassifier
from sklearn_structlearn.datasets import (
    fashion_mnist_available,
    load_digits_images,
    load_fashion_mnist,
    permute_pixels,
)
from sklearn_structlearn.plotting import plot_recovered_topology
from sklearn_structlearn.sharing import SharedWeightLearner

SMALL = os.environ.get("STRUCTLEARN_EXAMPLE_SMALL", "0") not in ("", "0")
OUT = Path(os.environ.get("STRUCTLEARN_EXAMPLE_OUT", "."))
OUT.mkdir(parents=True, exist_ok=True)
# Capped iterations are part of the budget here, not a problem to report.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

try:
    import torch  # noqa: F401
except ImportError:  # torch is optional: the training is skipped
    torch = None
    print("torch not installed (pip install sklearn-structlearn[torch]): the training "
          "is skipped, the learned structure is still drawn.")

if fashion_mnist_available() and not SMALL:
    data_name, shape = "Fashion-MNIST", (28, 28)
    X_train, y_train = load_fashion_mnist(subset="train", n_samples=10000, random_state=0)
    X_test, y_test = load_fashion_mnist(subset="test", n_samples=5000, random_state=0)
else:
    # the quick run uses the digits always: recovering the grid of 784 pixels takes
    # about a minute whatever the number of images
    if not SMALL:
        print("Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist): digits.")
    data_name, shape = "digits", (8, 8)
    X, y = load_digits_images()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                        random_state=0)
X_train_shuffled, permutation = permute_pixels(X_train, random_state=0)
X_test_shuffled = permute_pixels(X_test, permutation=permutation)[0]


def learner():
    """The small CNN's layout: 3x3 kernels, 32 and 64 families, 2x2 max pooling."""
    if SMALL:
        return SharedWeightLearner(n_kernels=(4, 8), kernel_size=3, n_patches=2000,
                                   max_iter=3, random_state=0)
    return SharedWeightLearner(kernel_size=3, random_state=0)


# %%
# Trained with the labels, on shuffled and on original pixels
# -----------------------------------------------------------
# The same training budget for both (Adam, a step of 1e-3 -- 1e-2 for the quick run's
# few epochs --, at most ``EPOCHS`` epochs, early stopping on a 10% validation split).
EPOCHS, STEP = (4, 1e-2) if SMALL else (10, 1e-3)
rows, structure = [], None
if torch is not None:
    for pixels, (train, test) in {"shuffled": (X_train_shuffled, X_test_shuffled),
                                  "original": (X_train, X_test)}.items():
        clf = StructuredNetClassifier(learner(), learning_rate=STEP, dropout=0.0,
                                      max_epochs=EPOCHS, n_iter_no_change=5,
                                      random_state=0, n_jobs=1)
        start = time.perf_counter()
        clf.fit(train, y_train)
        if pixels == "shuffled":
            structure = clf.structure_learner_  # learned before the labels were used
        rows.append((pixels, clf.score(test, y_test), time.perf_counter() - start,
                     clf.n_parameters(), clf.n_parameters(nonzero=True)))

    print(f"\n{data_name}: {X_train.shape[0]} training images, {X_test.shape[0]} test images\n")
    print("| pixels | test accuracy | fit time (s) | parameters (non-zero) |")
    print("|---|---|---|---|")
    for pixels, accuracy, fit_time, total, nonzero in rows:
        print(f"| {pixels} | {100 * accuracy:.2f}% | {fit_time:.1f} | {total:,} ({nonzero:,}) |")
    change = 100 * (rows[0][1] - rows[1][1])
    print(f"\nshuffling the pixels changed the learned network's accuracy by {change:+.2f} "
          "points")


# %%
# The structure, learned from the shuffled pixels alone
# -----------------------------------------------------
# The grid comes back (up to a flip or a turn, which a convolution does not mind), and
# the layer-1 kernels are local edge and blob detectors.
if structure is None:  # without torch: the structure alone
    structure = learner().fit(X_train_shuffled)
print(f"\nthe structure learned from the shuffled {data_name} images, without labels:")
print(structure.summary())
exact = structure.topology_.recovery(shape, permutation)["exact"]
print(f"pixels at their exact site: {exact:.1%}")

fig = plot_recovered_topology(structure, X_train_shuffled[0], shape, permutation=permutation)
fig.savefig(OUT / "shared_weights_topology.png", dpi=100)
structure.plot_kernels().savefig(OUT / "shared_weights_kernels.png", dpi=100)
