"""
Local receptive fields, found with and without the pixel layout
===============================================================

A CNN is told that neighbouring pixels belong together: its units read small
square windows. :class:`~sklearn_structlearn.DeepStructureLearner` is told
nothing about the pixel grid -- the connectivity penalty only makes each unit
read *few* inputs. If the units nevertheless read *neighbouring* pixels, the
locality was found in the data.

The strongest form of the test shuffles the pixels of every image by one fixed
random permutation (:func:`~sklearn_structlearn.datasets.permute_pixels`)
before learning: the images look like noise, and any locality a method found by
exploiting the pixel order is gone. Undoing the permutation on the learned
weights (:func:`~sklearn_structlearn.datasets.unpermute`) shows whether the
units still read compact patches of the original images.

Locality is measured by :func:`~sklearn_structlearn.structure.locality_ratio`:
the spatial spread of a unit's connection mass divided by that of random
connections with the same fan-in, median over the units (1 = as scattered as
random, smaller = more local).

Data: natural image patches (:func:`~sklearn_structlearn.datasets.extract_image_patches`
on :func:`sklearn.datasets.load_sample_images`) and Fashion-MNIST when
installed (digits otherwise).

Set ``STRUCTLEARN_EXAMPLE_SMALL=1`` for a quick run on tiny subsets and
``STRUCTLEARN_EXAMPLE_OUT`` to the directory where the figures are saved.
"""

# %%
# Settings and data
# -----------------
import os
import warnings
from pathlib import Path

from sklearn.exceptions import ConvergenceWarning

from sklearn_structlearn import DeepStructureLearner
from sklearn_structlearn.datasets import (
    extract_image_patches,
    fashion_mnist_available,
    load_digits_images,
    load_fashion_mnist,
    permute_pixels,
)
from sklearn_structlearn.plotting import plot_receptive_fields
from sklearn_structlearn.structure import fan_in_stats, locality_ratio

SMALL = os.environ.get("STRUCTLEARN_EXAMPLE_SMALL", "0") not in ("", "0")
OUT = Path(os.environ.get("STRUCTLEARN_EXAMPLE_OUT", "."))
OUT.mkdir(parents=True, exist_ok=True)
# A capped number of iterations is part of the budget here, not a problem to report.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

MAX_ITER = 2 if SMALL else 20
datasets = {"patches": (extract_image_patches((12, 12), n_patches=200 if SMALL else 8000,
                                              random_state=0), (12, 12), 32 if SMALL else 128)}
if fashion_mnist_available():
    X_fashion, _ = load_fashion_mnist(n_samples=200 if SMALL else 2000, random_state=0)
    datasets["fashion-mnist"] = (X_fashion, (28, 28), 16 if SMALL else 128)
else:
    print("Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist): "
          "digits instead.")
    datasets["digits"] = (load_digits_images()[0], (8, 8), 64)

# %%
# Learn on the images, then on the shuffled images
# ------------------------------------------------
# The same learner (same seed) is fitted twice. The shuffled fit gets no
# ``image_shape``: it sees a bag of features. Its locality is measured after
# undoing the permutation (``permutation=`` of ``locality_ratio``).
results = {}
for name, (X, shape, n_components) in datasets.items():
    params = dict(max_depth=1, n_components=n_components, group_size=4, max_iter=MAX_ITER,
                  random_state=0)
    plain = DeepStructureLearner(image_shape=shape, **params).fit(X)
    X_perm, permutation = permute_pixels(X, random_state=42)
    shuffled = DeepStructureLearner(**params).fit(X_perm)

    W_plain = plain.layers_[0].components_
    W_shuffled = shuffled.layers_[0].components_
    _, loc_plain = locality_ratio(W_plain, shape, random_state=0)
    _, loc_shuffled = locality_ratio(W_shuffled, shape, permutation=permutation,
                                     random_state=0)
    # The shuffled weights read in the shuffled order: what a method that assumes
    # the pixel order is meaningful would see.
    _, loc_as_seen = locality_ratio(W_shuffled, shape, random_state=0)
    results[name] = (loc_plain, loc_shuffled, loc_as_seen)
    fan = fan_in_stats(W_plain)
    fan_shuffled = fan_in_stats(W_shuffled)
    print(f"{name}: {X.shape[0]} images {shape[0]}x{shape[1]}, {n_components} units")
    print(f"    locality, original pixels            : {loc_plain:.3f}  "
          f"(median fan-in {fan['median']:g} of {X.shape[1]}, "
          f"{100 * fan['frac_dead_units']:.0f}% dead units)")
    print(f"    locality, shuffled then unshuffled   : {loc_shuffled:.3f}  "
          f"(median fan-in {fan_shuffled['median']:g}, "
          f"{100 * fan_shuffled['frac_dead_units']:.0f}% dead units)")
    print(f"    locality, shuffled, read as learned  : {loc_as_seen:.3f}  (random = 1)")

    # %%
    # Receptive fields: original, shuffled as learned, shuffled then unshuffled.
    figures = {
        "original": plot_receptive_fields(
            W_plain, shape, n_units=48,
            title=f"{name}: learned on the images (locality {loc_plain:.2f})"),
        "shuffled_as_learned": plot_receptive_fields(
            W_shuffled, shape, n_units=48,
            title=f"{name}: learned on shuffled pixels, shown in shuffled order"),
        "shuffled_unpermuted": plot_receptive_fields(
            W_shuffled, shape, n_units=48, permutation=permutation,
            title=f"{name}: learned on shuffled pixels, permutation undone "
                  f"(locality {loc_shuffled:.2f})"),
    }
    for suffix, fig in figures.items():
        fig.savefig(OUT / f"local_connectivity_{name}_{suffix}.png", dpi=90)

# %%
# Summary
# -------
print("| data | locality (original) | locality (shuffled, unpermuted) | shuffled order as is |")
print("|---|---|---|---|")
for name, (loc_plain, loc_shuffled, loc_as_seen) in results.items():
    print(f"| {name} | {loc_plain:.3f} | {loc_shuffled:.3f} | {loc_as_seen:.3f} |")
