"""Data sets for margin experiments: synthetic sets, digits, MNIST, Fashion-MNIST, CIFAR-10.

:func:`load_dataset` is the entry point; :data:`DATASETS` lists the names. Real data files
are found through ``data_dir``, the ``MARGINLAB_DATA`` variable or ``~/.cache/marginlab``.

Examples
--------
>>> from marginlab.data import load_dataset
>>> load_dataset("digits", classes=[0, 1])
Dataset(name='digits', n_train=360, n_test=0, input_shape=(1, 8, 8), n_classes=2)
"""

from marginlab.data.checksums import verify_checksums
from marginlab.data.cifar import CIFAR10_CLASSES, load_cifar10_split
from marginlab.data.dataset import Dataset
from marginlab.data.idx import FASHION_MNIST_CLASSES, read_idx
from marginlab.data.paths import cache_dir, resolve_data_dir
from marginlab.data.registry import DATASETS, dataset_params, load_dataset
from marginlab.data.synthetic import cluster_centers

__all__ = [
    "CIFAR10_CLASSES",
    "DATASETS",
    "FASHION_MNIST_CLASSES",
    "Dataset",
    "cache_dir",
    "cluster_centers",
    "dataset_params",
    "load_cifar10_split",
    "load_dataset",
    "read_idx",
    "resolve_data_dir",
    "verify_checksums",
]
