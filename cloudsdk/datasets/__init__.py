"""Training-dataset files: the formats (:mod:`cloudsdk.datasets.formats`), TFRecord without
TensorFlow (:mod:`cloudsdk.datasets.tfrecord`) and petastorm (:mod:`cloudsdk.datasets.petastorm`).

Importing this package imports pyarrow and numpy only; h5py and the petastorm module load
when a format needs them.
"""

from __future__ import annotations

from cloudsdk.datasets.formats import (
    FORMATS,
    PART_GLOB,
    SUCCESS_FILE,
    TF_RECORD_SCHEMA_FILE,
    PartInfo,
    PartWriter,
    canonical_format,
    check_schema,
    file_suffix,
    iter_file_batches,
    list_parts,
    part_name,
    read_dataset,
)

__all__ = [
    "FORMATS",
    "PART_GLOB",
    "SUCCESS_FILE",
    "TF_RECORD_SCHEMA_FILE",
    "PartInfo",
    "PartWriter",
    "canonical_format",
    "check_schema",
    "file_suffix",
    "iter_file_batches",
    "list_parts",
    "part_name",
    "read_dataset",
]
