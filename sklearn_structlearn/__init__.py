"""sklearn-structlearn: learn a deep network's structure from unlabeled data.

Stacked group sparse coding, guided by the efficient coding principle, learns which unit
connects to which input, which units pool together and how many layers to stack; the
result is a scikit-learn transformer and can be exported to PyTorch (optional extra).
"""

from .classifier import StructuredNetClassifier
from .deep import DeepStructureLearner
from .encoding import group_sparse_encode
from .entropy import entropy_gain, output_entropy
from .layer import GroupSparseCodingLayer
from .objective import alpha_max

__version__ = "0.1.0.dev0"

__all__ = [
    "DeepStructureLearner",
    "GroupSparseCodingLayer",
    "StructuredNetClassifier",
    "alpha_max",
    "entropy_gain",
    "group_sparse_encode",
    "output_entropy",
    "__version__",
]
