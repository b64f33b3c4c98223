"""Machine-learning loaders: stream a dataset's rows into TensorFlow and PyTorch.

Importing this package (or its submodules) imports neither TensorFlow nor torch; the
functions do when called, and raise an ImportError naming the extra to install.

* :class:`~cloudsdk.ml.source.FileSource` — a dataset's files on a ``pyarrow.fs``
  filesystem (local or S3), split into units (Parquet row groups, or whole files).
* :func:`~cloudsdk.ml.torch.torch_dataset`, :func:`~cloudsdk.ml.torch.torch_dataloader` —
  a streaming ``IterableDataset`` / ``DataLoader`` sharded over ranks and workers.
* :func:`~cloudsdk.ml.tensorflow.tf_dataset`, :func:`~cloudsdk.ml.tensorflow.tfrecord_dataset`
  — ``tf.data`` pipelines with parallel interleave and prefetch.
"""

from __future__ import annotations

from cloudsdk.ml.source import DatasetSource, FileSource, Unit
from cloudsdk.ml.tensorflow import tf_dataset, tfrecord_dataset
from cloudsdk.ml.torch import torch_dataloader, torch_dataset

__all__ = [
    "DatasetSource",
    "FileSource",
    "Unit",
    "tf_dataset",
    "tfrecord_dataset",
    "torch_dataloader",
    "torch_dataset",
]
