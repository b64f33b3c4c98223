"""Read a petastorm dataset written by cloudsdk with petastorm itself (legacy environment).

Run with ``.venv-legacy``'s python by tests/test_legacy_env.py::

    python tests/legacy/read_petastorm.py URL EXPECTED.npz [--endpoint http://127.0.0.1:PORT]

``URL`` is the dataset directory (a local path or ``s3://bucket/prefix``), ``EXPECTED.npz``
the columns that were written (``id``, ``image``, ``embedding``, ``score``, ``name``,
``label``). Checks, each against the expected values, row by row (matched on ``id``):

* ``make_reader`` (arrays decoded by the Unischema's NdarrayCodec),
* ``petastorm.pytorch.DataLoader`` over ``make_reader`` (image tensors ``[B, 28, 28]`` uint8),
* ``make_batch_reader`` (scalars natively; arrays as ``np.save`` bytes),
* ``make_petastorm_dataset`` (TensorFlow) over ``make_batch_reader`` and over ``make_reader``.

Prints one JSON line ``{"checks": [...], "rows": N, ...}`` and exits 0; a failed check raises.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import warnings
from typing import Any

import numpy as np

# petastorm 0.13.1 on pyarrow 14 warns about its own use of deprecated pyarrow APIs
warnings.simplefilter("ignore")


def _connector(endpoint: str | None) -> dict[str, Any] | None:
    if not endpoint:
        return None
    return {"endpoint_url": endpoint, "access_key": "testing", "secret_key": "testing",
            "region": "us-east-1"}


def _open(url: str, endpoint: str | None, *, batch: bool, **options: Any) -> Any:
    from cloudsdk.datasets.petastorm import make_reader

    options.setdefault("workers_count", 2)
    options.setdefault("shuffle_row_groups", False)
    return make_reader(url, batch=batch, connector=_connector(endpoint), **options)


def _check_row(expected: dict[str, np.ndarray], index: dict[int, int], row: dict[str, Any]) -> None:
    i = index[int(row["id"])]
    assert np.array_equal(np.asarray(row["image"]), expected["image"][i]), f"image of id {row['id']}"
    assert np.asarray(row["image"]).shape == (28, 28)
    assert np.array_equal(np.asarray(row["embedding"]), expected["embedding"][i]), "embedding"
    assert float(row["score"]) == float(expected["score"][i]), "score"
    assert int(row["label"]) == int(expected["label"][i]), "label"
    if "name" in row:
        name = row["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        assert name == str(expected["name"][i]), f"name {name!r} != {expected['name'][i]!r}"


def check_make_reader(url: str, endpoint: str | None, expected: dict[str, np.ndarray],
                      index: dict[int, int]) -> dict[str, Any]:
    seen = []
    with _open(url, endpoint, batch=False) as reader:
        schema = reader.schema
        image_field = schema.fields["image"]
        assert image_field.shape == (28, 28), image_field
        assert image_field.numpy_dtype is np.uint8
        assert type(image_field.codec).__name__ == "NdarrayCodec"
        assert schema.fields["embedding"].shape == (None,)
        assert schema.fields["label"].codec is None
        for row in reader:
            d = row._asdict()
            assert d["image"].dtype == np.uint8 and d["embedding"].dtype == np.float32
            _check_row(expected, index, d)
            seen.append(int(d["id"]))
    assert sorted(seen) == sorted(index), "make_reader: every row exactly once"
    return {"make_reader": len(seen)}


def check_torch(url: str, endpoint: str | None, expected: dict[str, np.ndarray],
                index: dict[int, int]) -> dict[str, Any]:
    import torch
    from petastorm.pytorch import DataLoader

    seen: list[int] = []
    shapes = set()
    fields = ["id", "image", "embedding", "score", "label"]  # torch collates no strings
    with DataLoader(_open(url, endpoint, batch=False, schema_fields=fields), batch_size=16) as loader:
        for batch in loader:
            image = batch["image"]
            assert isinstance(image, torch.Tensor) and image.dtype == torch.uint8
            shapes.add(tuple(image.shape[1:]))
            assert image.shape[0] == batch["label"].shape[0] <= 16
            for j in range(image.shape[0]):
                _check_row(expected, index, {k: batch[k][j].numpy() for k in fields})
            seen.extend(int(x) for x in batch["id"])
    assert shapes == {(28, 28)}, shapes
    assert sorted(seen) == sorted(index), "torch DataLoader: every row exactly once"
    return {"torch_dataloader": len(seen)}


def check_batch_reader(url: str, endpoint: str | None, expected: dict[str, np.ndarray],
                       index: dict[int, int]) -> dict[str, Any]:
    seen: list[int] = []
    with _open(url, endpoint, batch=True) as reader:
        for batch in reader:
            d = batch._asdict()
            for j in range(len(d["id"])):
                row = {k: v[j] for k, v in d.items()}
                # arrays are NdarrayCodec bytes: make_batch_reader does not decode them
                row["image"] = np.load(io.BytesIO(row["image"]))
                row["embedding"] = np.load(io.BytesIO(row["embedding"]))
                _check_row(expected, index, row)
            seen.extend(int(x) for x in d["id"])
    assert sorted(seen) == sorted(index), "make_batch_reader: every row exactly once"
    return {"make_batch_reader": len(seen)}


def check_tensorflow(url: str, endpoint: str | None, expected: dict[str, np.ndarray],
                     index: dict[int, int]) -> dict[str, Any]:
    import tensorflow as tf
    from petastorm.tf_utils import make_petastorm_dataset

    seen: list[int] = []
    with _open(url, endpoint, batch=True, schema_fields=["id", "score", "label", "name"]) as reader:
        for batch in make_petastorm_dataset(reader):
            assert batch.label.dtype == tf.int64 and batch.score.dtype == tf.float64
            for j, row_id in enumerate(batch.id.numpy()):
                i = index[int(row_id)]
                assert int(batch.label[j]) == int(expected["label"][i])
                assert float(batch.score[j]) == float(expected["score"][i])
                assert batch.name[j].numpy().decode() == str(expected["name"][i])
            seen.extend(int(x) for x in batch.id.numpy())
    assert sorted(seen) == sorted(index), "make_petastorm_dataset(batch reader): every row once"
    rows = 0
    with _open(url, endpoint, batch=False, schema_fields=["id", "image", "label"]) as reader:
        for row in make_petastorm_dataset(reader):
            assert row.image.shape == (28, 28) and row.image.dtype == tf.uint8
            assert np.array_equal(row.image.numpy(), expected["image"][index[int(row.id)]])
            rows += 1
    assert rows == len(index)
    return {"tf_batch_reader": len(seen), "tf_row_reader": rows}


CHECKS = {"make_reader": check_make_reader, "torch": check_torch,
          "batch_reader": check_batch_reader, "tensorflow": check_tensorflow}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("expected")
    parser.add_argument("--endpoint", help="S3 endpoint URL for an s3:// dataset (moto)")
    parser.add_argument("--checks", default=",".join(CHECKS))
    args = parser.parse_args(argv)
    with np.load(args.expected) as npz:
        expected = {k: npz[k] for k in npz.files}
    index = {int(v): i for i, v in enumerate(expected["id"])}
    result: dict[str, Any] = {"checks": [], "rows": len(index)}
    for name in args.checks.split(","):
        result.update(CHECKS[name](args.url, args.endpoint, expected, index))
        result["checks"].append(name)
    import petastorm
    import pyarrow

    result["versions"] = {"petastorm": petastorm.__version__, "pyarrow": pyarrow.__version__,
                          "numpy": np.__version__}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
