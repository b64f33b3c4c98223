"""Materialise a training dataset: split rows, write part files, publish them atomically.

Used by the store (managed location, or an S3 connector from the server) and by the client
(a DataFrame written straight to an S3 sink). Rows stream through: batches are split,
encoded and written part by part; on S3 each part is uploaded as soon as it is complete
and removed from the local staging directory, so neither memory nor local disk ever holds
the whole dataset.

Publishing: a managed (local) dataset is written to a hidden staging directory that is
renamed into place when complete. An S3 dataset's objects are uploaded under its prefix,
metadata files last and ``_SUCCESS`` at the very end; objects of an earlier write of the
same version that the new one did not produce are deleted afterwards. Any failure removes
what this write created.
"""

from __future__ import annotations

import contextlib
import math
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from cloudsdk._names import validate_feature_name
from cloudsdk.datasets import s3 as s3util
from cloudsdk.errors import InvalidArgumentError, SchemaMismatchError

ROWS_PER_FILE = 1_000_000
_SPLIT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")


def check_splits(splits: Mapping[str, float] | None) -> dict[str, float] | None:
    """Validate ``{"train": 0.8, "test": 0.2}``: names like identifiers, positive fractions
    that sum to 1 (within 1e-6)."""
    if splits is None:
        return None
    if not isinstance(splits, Mapping) or not splits:
        raise InvalidArgumentError('splits must be a dict of name -> fraction, e.g. {"train": 0.8, "test": 0.2}')
    out: dict[str, float] = {}
    for name, fraction in splits.items():
        if not isinstance(name, str) or not _SPLIT_RE.match(name):
            raise InvalidArgumentError(f"split name {name!r} must start with a letter and hold only letters, digits and _")
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not (0 < fraction <= 1) \
                or not math.isfinite(fraction):
            raise InvalidArgumentError(f"split {name!r}: the fraction must be a number in (0, 1], got {fraction!r}")
        out[name] = float(fraction)
    total = sum(out.values())
    if abs(total - 1.0) > 1e-6:
        raise InvalidArgumentError(f"split fractions must sum to 1, got {total:g} for {out}")
    return out


def check_column_names(schema: pa.Schema) -> None:
    """Column names as feature names (letters, digits, ``_``), unique ignoring case."""
    seen: dict[str, str] = {}
    for name in schema.names:
        validate_feature_name(name)
        if name.lower() in seen:
            raise SchemaMismatchError(f"columns {seen[name.lower()]!r} and {name!r} differ only in case; rename one")
        seen[name.lower()] = name


@dataclass
class _Split:
    name: str | None
    writer: Any
    rows: int = 0
    files: list[str] = field(default_factory=list)
    file_rows: dict[str, int] = field(default_factory=dict)


class LocalTarget:
    """The managed location: ``final`` appears, complete, by one rename."""

    def __init__(self, final: str | Path) -> None:
        self.final = Path(final)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.staging = self.final.parent / f".tmp-{self.final.name}-{uuid.uuid4().hex}"
        self.staging.mkdir()
        self.location = str(self.final)

    def part_done(self, path: Path) -> None:
        """Nothing to do: the file stays in the staging directory."""

    def commit(self) -> None:
        """Swap the staging directory in (replacing an earlier write of the same version)."""
        trash = None
        if self.final.exists():
            trash = self.final.parent / f".old-{uuid.uuid4().hex}"
            self.final.rename(trash)
        self.staging.rename(self.final)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


class S3Target:
    """An S3 connector's bucket: parts are uploaded while the rest is still being written.

    A fresh location is written in place. When objects already exist there (an overwrite),
    the new files go to a hidden sibling prefix first and are copied into place (server-side
    copies) only once all of them are uploaded, so a failed overwrite leaves the old version
    whole; during those copies a reader may briefly see a mix of old and new files.
    """

    def __init__(self, connector: Mapping[str, Any], url: str) -> None:
        self.connector = dict(connector)
        self.location = url.rstrip("/")
        self.bucket, self.prefix = s3util.split_url(self.location)
        self.client = s3util.client(self.connector)
        self.extra = s3util.extra_args(self.connector)
        self.staging = Path(tempfile.mkdtemp(prefix="cloudsdk-td-"))
        self.uploaded: list[str] = []
        try:
            self.previous = self._existing(self.prefix)
        except BaseException:
            shutil.rmtree(self.staging, ignore_errors=True)
            raise
        self.fresh = not self.previous
        if self.fresh:
            self.upload_prefix = self.prefix
        else:
            parent, _, leaf = self.prefix.rpartition("/")
            hidden = f".tmp-{leaf}-{uuid.uuid4().hex}"
            self.upload_prefix = f"{parent}/{hidden}" if parent else hidden

    def _key(self, path: Path, prefix: str) -> str:
        rel = path.relative_to(self.staging).as_posix()
        return f"{prefix}/{rel}" if prefix else rel

    def _upload(self, path: Path) -> None:
        key = self._key(path, self.upload_prefix)
        try:
            self.client.upload_file(str(path), self.bucket, key, ExtraArgs=self.extra or None)
        except Exception as exc:
            raise s3util.translate(exc, self.connector, f"upload {key}") from exc
        self.uploaded.append(key)
        path.unlink()

    def part_done(self, path: Path) -> None:
        """Upload a finished part now and drop the local copy."""
        self._upload(path)

    def commit(self) -> None:
        """Upload the remaining (metadata) files, ``_SUCCESS`` last; on an overwrite copy the
        new files into place and delete the old version's files that the new one lacks."""
        rest = sorted((p for p in self.staging.rglob("*") if p.is_file()),
                      key=lambda p: (p.name == "_SUCCESS", p.parent == self.staging, p.as_posix()))
        for path in rest:
            self._upload(path)
        if not self.fresh:
            final = [self.prefix + key[len(self.upload_prefix):] for key in self.uploaded]
            order = sorted(zip(self.uploaded, final, strict=True), key=lambda kv: kv[1].endswith("/_SUCCESS"))
            try:
                for src, dst in order:
                    self.client.copy({"Bucket": self.bucket, "Key": src}, self.bucket, dst,
                                     ExtraArgs=self.extra or None)
            except Exception as exc:
                raise s3util.translate(exc, self.connector, f"copy into {self.location}") from exc
            keep = set(final)
            self._delete([k for k in self.previous if k not in keep])
            self._delete(self.uploaded)
            self.uploaded = final
        shutil.rmtree(self.staging, ignore_errors=True)

    def _existing(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix + "/"):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        except Exception as exc:
            raise s3util.translate(exc, self.connector, f"write to {self.location}") from exc
        return keys

    def _delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            chunk = keys[i:i + 1000]
            self.client.delete_objects(Bucket=self.bucket,
                                       Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})

    def abort(self) -> None:
        """Delete what this write uploaded (on an overwrite: only the hidden copy)."""
        with contextlib.suppress(Exception):  # best effort: the error that caused the abort matters more
            self._delete(self.uploaded)
        shutil.rmtree(self.staging, ignore_errors=True)


Target = LocalTarget | S3Target


def _batches(data: pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch], chunk: int) -> Iterable[pa.RecordBatch]:
    if isinstance(data, pa.Table):
        yield from data.to_batches(max_chunksize=chunk)
    else:
        yield from data


def write_dataset(
    data: pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch],
    schema: pa.Schema,
    data_format: str,
    target: Target,
    *,
    splits: Mapping[str, float] | None = None,
    seed: int | None = None,
    rows_per_file: int = ROWS_PER_FILE,
) -> dict[str, Any]:
    """Write ``data`` (in the logical ``schema``) as a dataset and publish it to ``target``.

    Returns the layout the catalog keeps: ``{"rows", "files", "splits", "seed", "file_rows"}``; ``files``
    are paths relative to the dataset directory (``part-r-00000.parquet`` or
    ``train/part-r-00000.parquet``), ``splits`` maps a split name to ``{"fraction", "rows",
    "files"}``. Rows go to splits by a seeded uniform draw per row, so the same data, order
    and seed give the same splits. On any failure the target is rolled back and the error
    re-raised.
    """
    from cloudsdk.datasets import formats

    fmt = formats.canonical_format(data_format)
    fractions = check_splits(splits)
    if isinstance(rows_per_file, bool) or not isinstance(rows_per_file, int) or rows_per_file < 1:
        target.abort()
        raise InvalidArgumentError(f"rows_per_file must be a positive integer, got {rows_per_file!r}")
    try:
        check_column_names(schema)
    except BaseException:
        target.abort()
        raise
    if fractions is not None and seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**31))  # type: ignore[operator]
    parts: list[_Split] = []
    try:
        formats.check_schema(schema, fmt)

        def make(name: str | None) -> _Split:
            directory = target.staging / name if name else target.staging
            split = _Split(name, None)

            def on_part(path: Path, info: Any) -> None:
                rel = path.relative_to(target.staging).as_posix()
                split.rows += int(info.rows)
                split.files.append(rel)
                split.file_rows[rel] = int(info.rows)
                target.part_done(path)

            split.writer = formats.PartWriter(directory, schema, fmt, rows_per_file=rows_per_file, on_part=on_part)
            return split

        if fractions is None:
            parts = [make(None)]
        else:
            parts = [make(name) for name in fractions]
            bounds = np.cumsum(list(fractions.values()))
            bounds[-1] = np.inf
            rng = np.random.default_rng(seed)
        for batch in _batches(data, 65_536):
            if batch.num_rows == 0:
                continue
            if not batch.schema.equals(schema):
                batch = pa.RecordBatch.from_arrays(
                    [batch.column(i).cast(f.type) for i, f in enumerate(schema)], schema=schema)
            if fractions is None:
                parts[0].writer.write(batch)
                continue
            which = np.searchsorted(bounds, rng.random(batch.num_rows), side="right")
            for i, split in enumerate(parts):
                mask = which == i
                if mask.any():
                    split.writer.write(batch.filter(pa.array(mask)))
        for split in parts:
            split.writer.close()
            split.writer = None
        if fractions is not None:  # the whole dataset is complete: one marker at its root too
            (target.staging / "_SUCCESS").touch()
        target.commit()
    except BaseException:
        for split in parts:
            if split.writer is not None:
                with contextlib.suppress(Exception):
                    split.writer.abort()
        target.abort()
        raise
    files = [f for split in parts for f in split.files]
    layout: dict[str, Any] = {"rows": sum(s.rows for s in parts), "files": files, "splits": None, "seed": seed,
                              "file_rows": {k: v for s in parts for k, v in s.file_rows.items()}}
    if fractions is not None:
        layout["splits"] = {s.name: {"fraction": fractions[s.name or ""], "rows": s.rows, "files": s.files}
                            for s in parts}
    return layout
