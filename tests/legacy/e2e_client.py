"""The legacy ML client end to end (run with ``.venv-legacy``'s python by tests/test_legacy_env.py).

Against a ``cloudsdk server`` started from the main environment and a moto S3 server:

1. connect (API key file, the server's CA as trust store) and read a feature group of
   MNIST-like rows (``id``, a 28x28 uint8 ``image``, ``label``) that the test created;
2. register the S3 bucket as a storage connector, then create training datasets on it:
   ``petastorm`` from the DataFrame (written by this client, with pyarrow 14) and from a
   query (materialised by the server), and ``tfrecords`` from the DataFrame;
3. read the petastorm datasets with petastorm (``make_reader`` + ``petastorm.pytorch.DataLoader``,
   ``make_batch_reader`` + ``make_petastorm_dataset``) and with cloudsdk's own loaders
   (``td.torch_dataloader``, ``td.tf_data``);
4. last, read the tfrecords dataset with TensorFlow natively from ``s3://`` (tensorflow-io:
   the seed's ``TFRecordDataset`` snippet). tensorflow-io aborts the process at exit after S3
   use, so the result is printed first and the script leaves with ``os._exit(0)``.

Every check compares values with the feature group's rows. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Any

import numpy as np

warnings.simplefilter("ignore")  # petastorm on pyarrow 14 warns about its own deprecated calls


def _by_id(ids: Any, values: Any) -> dict[int, Any]:
    return {int(i): v for i, v in zip(ids, values, strict=True)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    for option in ("--host", "--project", "--api-key-file", "--trust-store", "--cert-folder",
                   "--s3-endpoint", "--bucket", "--feature-group"):
        parser.add_argument(option, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"steps": []}

    from cloudsdk import featurestore

    # the seed's functional API (its connection is also the object API's)
    conn = featurestore.connect(args.host, args.project, port=args.port, api_key_file=args.api_key_file,
                                trust_store_path=args.trust_store, cert_folder=args.cert_folder)
    fs = conn.get_feature_store()
    fg = fs.get_feature_group(args.feature_group, 1)
    # as Arrow: a pandas DataFrame would keep the images as nested object arrays, losing the
    # fixed 28x28 shape that tfrecords needs
    df = fg.read("pyarrow")
    assert str(df.schema.field("image").type) == "fixed_size_list<item: fixed_size_list<item: uint8>[28]>[28]"
    ids = df.column("id").to_pylist()
    images = _by_id(ids, [np.asarray(v, dtype=np.uint8) for v in df.column("image").to_pylist()])
    labels = _by_id(ids, df.column("label").to_pylist())
    result["feature_rows"] = df.num_rows
    result["steps"].append("read_features")

    fs.create_s3_connector("legacy_s3", args.bucket, path="datasets", endpoint_url=args.s3_endpoint,
                           access_key="testing", secret_key="testing", region="us-east-1", exist_ok=True)
    td = fs.create_training_dataset("mnist_petastorm", df, data_format="petastorm", sink="legacy_s3")
    td_query = fs.create_training_dataset("mnist_petastorm_query", fg.select_all(), data_format="petastorm",
                                          sink="legacy_s3")
    td_tfr = fs.create_training_dataset("mnist_tfrecords", df, data_format="tfrecords", sink="legacy_s3")
    for dataset in (td, td_query, td_tfr):
        assert dataset.location.startswith(f"s3://{args.bucket}/datasets/"), dataset.location
        assert dataset.row_count == df.num_rows, (dataset.name, dataset.row_count)
    result["paths"] = [td.location, td_query.location, td_tfr.location]
    result["steps"].append("create_on_s3")

    # --- petastorm ---------------------------------------------------------------------
    import torch
    from petastorm.pytorch import DataLoader
    from petastorm.tf_utils import make_petastorm_dataset

    for dataset in (td, td_query):
        seen = []
        with DataLoader(dataset.petastorm_reader(batch=False, schema_fields=["id", "image", "label"],
                                                 workers_count=2), batch_size=10) as loader:
            for batch in loader:
                assert isinstance(batch["image"], torch.Tensor) and batch["image"].dtype == torch.uint8
                assert tuple(batch["image"].shape[1:]) == (28, 28), batch["image"].shape
                for row_id, image, label in zip(batch["id"], batch["image"], batch["label"], strict=True):
                    assert np.array_equal(image.numpy(), images[int(row_id)]), f"image {int(row_id)}"
                    assert int(label) == int(labels[int(row_id)])
                    seen.append(int(row_id))
        assert sorted(seen) == sorted(images), (f"{dataset.name}: petastorm DataLoader rows: {len(seen)} read, "
                                                f"{len(set(seen))} distinct of {len(images)}")
    result["steps"].append("petastorm_make_reader_torch")

    with td.petastorm_reader(batch=True, schema_fields=["id", "label"], workers_count=2) as reader:
        got = {}
        for batch in make_petastorm_dataset(reader):
            got.update(_by_id(batch.id.numpy(), batch.label.numpy()))
    assert got == {k: int(v) for k, v in labels.items()}, "make_batch_reader + make_petastorm_dataset"
    result["steps"].append("petastorm_make_batch_reader_tf")

    # --- cloudsdk's loaders --------------------------------------------------------------
    seen_ids: list[int] = []
    for features, label in td.torch_dataloader("label", batch_size=16, shuffle=True, seed=3):
        image = features["image"]
        assert isinstance(image, torch.Tensor) and tuple(image.shape[1:]) == (28, 28), type(image)
        for row_id, img, lab in zip(features["id"], image, label, strict=True):
            assert np.array_equal(img.numpy(), images[int(row_id)]) and int(lab) == int(labels[int(row_id)])
            seen_ids.append(int(row_id))
    assert sorted(seen_ids) == sorted(images), "td.torch_dataloader: every row once"
    result["steps"].append("cloudsdk_torch_dataloader")

    seen_ids = []
    for features, label in td.tf_data("label", batch_size=16):
        assert tuple(features["image"].shape[1:]) == (28, 28), features["image"].shape
        for row_id, img, lab in zip(features["id"].numpy(), features["image"].numpy(), label.numpy(),
                                    strict=True):
            assert np.array_equal(img, images[int(row_id)]) and int(lab) == int(labels[int(row_id)])
            seen_ids.append(int(row_id))
    assert sorted(seen_ids) == sorted(images), "td.tf_data: every row once"
    result["steps"].append("cloudsdk_tf_data")

    # the seed's snippet: the dataset's path and tf record schema from the functional API
    path = featurestore.get_training_dataset_path("mnist_tfrecords")
    assert path == td_tfr.location, (path, td_tfr.location)
    spec = featurestore.get_training_dataset_tf_record_schema("mnist_tfrecords")
    featurestore.disconnect()

    # --- TensorFlow natively from s3:// (tensorflow-io), last -----------------------------
    import tensorflow as tf
    import tensorflow_io  # noqa: F401  (registers the s3:// filesystem)

    files = tf.io.gfile.glob(path + "/part-r-*")
    assert files and all(f.startswith("s3://") for f in files), files
    dataset = tf.data.TFRecordDataset(files).map(lambda record: tf.io.parse_single_example(record, spec))
    native: dict[int, int] = {}
    for example in dataset:
        row_id = int(example["id"].numpy())
        native[row_id] = int(example["label"].numpy())
        image = example["image"]
        image = tf.sparse.to_dense(image) if isinstance(image, tf.SparseTensor) else image
        assert np.array_equal(np.reshape(image.numpy(), (28, 28)), images[row_id]), f"tfrecord image {row_id}"
    assert native == {k: int(v) for k, v in labels.items()}, "TFRecordDataset on s3://"
    result["steps"].append("tensorflow_native_s3")
    result["tfrecord_files"] = len(files)
    print(json.dumps(result), flush=True)
    sys.stdout.flush()
    os._exit(0)  # tensorflow-io aborts at interpreter exit after S3 use


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
