"""CPU time of learning one layer of structure with DeepStructureLearner on Fashion-MNIST.

    python benchmarks/bench_structure.py N_COMPONENTS N_IMAGES

One thread everywhere (Numba, BLAS), ZCA defaults, ``max_iter=10``, groups of 4; prints CPU and
wall time, the resolved penalties and the layer-1 locality. Run it with ``PYTHONPATH`` pointing
at another checkout of the package to compare versions in one session.
"""
import os, sys, time, warnings
os.environ["NUMBA_NUM_THREADS"] = "1"
import numpy as np
from threadpoolctl import threadpool_limits
warnings.simplefilter("ignore")
from sklearn_structlearn.datasets import load_fashion_mnist
from sklearn_structlearn import DeepStructureLearner
K = int(sys.argv[1]); n = int(sys.argv[2])
X, _ = load_fashion_mnist(n_samples=n, random_state=0)
with threadpool_limits(1):
    DeepStructureLearner(max_depth=1, n_components=8, group_size=4, max_iter=2).fit(X[:100])  # JIT warm-up
    t = time.process_time(); w = time.perf_counter()
    d = DeepStructureLearner(max_depth=1, n_components=K, group_size=4, max_iter=10, random_state=0, n_jobs=1, image_shape=(28, 28)).fit(X)
    s = d.structure_[0]
    print(f"K={K} n={n}: CPU {time.process_time()-t:.1f}s wall {time.perf_counter()-w:.1f}s alpha {d.layers_[0].alpha_:.3f} conn {d.layers_[0].connectivity_alpha_:.4g} locality {s.locality:.3f}" if hasattr(s,'locality') else "")
