"""Learn a network structure from unlabeled images, print it and save its pictures.

This is what the README's first command runs::

    python examples/learn_structure.py            # digits, then Fashion-MNIST if installed

It calls the ``sklearn-structlearn learn`` command line on scikit-learn's 8x8 digits and,
when the Debian package ``dataset-fashion-mnist`` is installed, on 2000 Fashion-MNIST
images. Each run prints the learned structure (depth, widths, pooling groups, fan-in,
entropy per layer, receptive-field locality) and writes into ``results/<data>/``:

- ``receptive_fields_layer{L}.png``: the units' input weights on the pixel grid (deeper
  layers traced to the pixels), with the locality ratio in the title. Nothing in the
  fit knows that the inputs are pixels, yet the units connect to small, compact sets of
  neighbouring pixels (strokes and contour segments on Fashion-MNIST);
- ``entropy_vs_depth.png``: the output entropy after each layer, with the layer the
  depth rule tried and rejected drawn hollow, and the redundancy of every
  representation (the depth rule keeps a layer while it lowers the redundancy);
- ``connectivity_layer1.png``: the connectivity mask, units x inputs;
- ``summary.txt`` and ``model.joblib`` (the fitted ``DeepStructureLearner``).

With the defaults (seed 0) this learns depth 1 on digits (locality 0.40, median fan-in
7 of 64 pixels) and depth 2 on Fashion-MNIST (locality 0.26, median fan-in 56 of 784;
the second layer pools the first layer's contour segments into whole garment shapes).
The README's picture is ``results/fashion-mnist/receptive_fields_layer1.png``, copied
to ``doc/_static/receptive_fields_fashion.png``.
"""

import sys
from pathlib import Path

from sklearn_structlearn.cli import main
from sklearn_structlearn.datasets import fashion_mnist_available


def run(out_dir="results"):
    out_dir = Path(out_dir)
    status = main(["learn", "--data", "digits", "--out", str(out_dir / "digits")])
    if status:
        return status
    if fashion_mnist_available():
        print()
        status = main(["learn", "--data", "fashion-mnist", "--n-samples", "2000",
                       "--out", str(out_dir / "fashion-mnist")])
    else:
        print("\nFashion-MNIST not found (apt-get install -y dataset-fashion-mnist); skipped.")
    return status


if __name__ == "__main__":
    sys.exit(run(sys.argv[1] if len(sys.argv) > 1 else "results"))
