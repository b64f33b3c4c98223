"""TensorFlow loaders: ``tf.data`` pipelines that stream a dataset source or TFRecord files.

TensorFlow cannot read ``s3://`` since 2.6 (tensorflow-io restores it only for old
versions), so the bytes come through a ``pyarrow.fs`` filesystem in Python generators,
one per unit, which ``tf.data`` interleaves in parallel (pyarrow releases the GIL while
it reads and decodes); large chunks cross the Python boundary and are cut into batches
by ``Dataset.rebatch`` in TensorFlow's own threads.

Importing this module does not import TensorFlow; the functions do, and say which extra to
install when it is missing (``pip install 'cloudsdk[tensorflow]'``).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow.fs as pafs

from cloudsdk.errors import DataValidationError, InvalidArgumentError
from cloudsdk.ml.source import (
    FEATURES_KEY,
    Chunk,
    ColumnSpec,
    DatasetSource,
    Selection,
    _storage_call,
    epoch_order,
    select_columns,
    unit_chunks,
)

__all__ = ["tf_dataset", "tfrecord_dataset"]

_INSTALL = "TensorFlow is not installed: pip install 'cloudsdk[tensorflow]'"
_CHUNK_ROWS = 65_536
_RECORDS_PER_CHUNK = 8_192
_READ_BLOCK = 8 << 20
_MAX_EPOCHS = np.iinfo(np.int64).max


def _tf() -> Any:
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise ImportError(_INSTALL) from exc
    return tf


def _check(batch_size: int, num_epochs: int | None, shuffle_buffer: int | None,
           num_parallel_reads: int | None) -> None:
    if batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be at least 1, not {batch_size}")
    if num_epochs is not None and num_epochs < 1:
        raise InvalidArgumentError(f"num_epochs must be at least 1 (or None: repeat forever), not {num_epochs}")
    if shuffle_buffer is not None and shuffle_buffer < 1:
        raise InvalidArgumentError(f"shuffle_buffer must be at least 1 row, not {shuffle_buffer}")
    if num_parallel_reads is not None and num_parallel_reads < 1:
        raise InvalidArgumentError(f"num_parallel_reads must be at least 1, not {num_parallel_reads}")


def _default_reads(units: int) -> int:
    """Units read at once by default: up to 4, no more than the CPUs (decoding needs them)."""
    return max(1, min(4, os.cpu_count() or 1, units))


def _seed(shuffle: bool, seed: int | None) -> int:
    if seed is not None:
        return int(seed)
    return int(np.random.SeedSequence().generate_state(1, np.uint64)[0]) if shuffle else 0


def _spec(tf: Any, spec: ColumnSpec) -> Any:
    """The TensorSpec of one column's batches."""
    dtype = tf.string if spec.dtype == object else tf.as_dtype(spec.dtype)
    if spec.kind == "ragged":
        if len(spec.shape) != 1:
            from cloudsdk.errors import UnsupportedError

            raise UnsupportedError(f"column {spec.name!r}: tf_dataset supports variable-length "
                                   "arrays of one dimension only", column=spec.name)
        return tf.RaggedTensorSpec([None, None], dtype, ragged_rank=1)
    return tf.TensorSpec([None, *spec.shape], dtype)


def _signature(tf: Any, selection: Selection) -> dict[str, Any]:
    sig: dict[str, Any] = {}
    if selection.stacked:
        sig[FEATURES_KEY] = tf.TensorSpec([None, len(selection.features)], tf.float32)
    else:
        for spec in selection.features:
            sig[spec.name] = _spec(tf, spec)
    if selection.target is not None and selection.target.name not in sig:
        sig[selection.target.name] = _spec(tf, selection.target)
    return sig


def _to_tf(tf: Any, selection: Selection, chunk: Chunk) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ragged = {s.name for s in (*selection.features, selection.target) if s is not None and s.kind == "ragged"}
    for key, array in chunk.arrays.items():
        if key == FEATURES_KEY:
            out[key] = np.ascontiguousarray(array)  # numpy transposes faster than tf.transpose
        elif key in ragged:
            lengths = np.fromiter((len(a) for a in array), dtype=np.int64, count=len(array))
            values = np.concatenate(list(array)) if len(array) else np.empty(0)
            out[key] = tf.RaggedTensor.from_row_lengths(values, lengths)
        else:
            out[key] = array
    return out


def _structure(selection: Selection) -> Callable[[dict[str, Any]], Any]:
    """The function that turns a chunk dict into the dataset's element structure."""
    features = [s.name for s in selection.features]
    target = None if selection.target is None else selection.target.name

    def arrange(d: dict[str, Any]) -> Any:
        x = d[FEATURES_KEY] if selection.stacked else {n: d[n] for n in features}
        return x if target is None else (x, d[target])

    return arrange


def _batched(tf: Any, ds: Any, batch_size: int, drop_remainder: bool, has_ragged: bool) -> Any:
    """Chunks → batches of ``batch_size`` rows, without going row by row where possible."""
    if hasattr(ds, "rebatch") and not has_ragged:
        return ds.rebatch(batch_size, drop_remainder=drop_remainder)
    return ds.unbatch().batch(batch_size, drop_remainder=drop_remainder)


def tf_dataset(source: DatasetSource, target_name: str | None = None,
               feature_names: Sequence[str] | None = None, *, batch_size: int = 256,
               shuffle: bool = False, shuffle_buffer: int | None = None, num_epochs: int | None = 1,
               seed: int | None = None, num_parallel_reads: int | None = None, prefetch: bool = True,
               drop_remainder: bool = False, stack_features: bool = True) -> Any:
    """A ``tf.data.Dataset`` of batches streamed from ``source`` (disk or S3, via pyarrow).

    Elements are ``(features, label)`` with a target — ``features`` a float32 tensor
    ``[B, F]`` when every selected feature is a numeric scalar (and ``stack_features``),
    else a dict name → tensor (arrays ``[B, *shape]``, variable-length arrays a
    ``tf.RaggedTensor``, strings ``tf.string``, timestamps their int64 count) — or the
    dict alone without a target. The label keeps its column's dtype. Each epoch yields
    every row once; its last batch may be shorter unless ``drop_remainder``. Batches never
    straddle two epochs.

    Units (row groups or files) are read by ``num_parallel_reads`` Python generators at
    once and interleaved; with ``shuffle`` the unit order is a permutation of the seed and
    the epoch, the rows of each unit are permuted too, and with ``shuffle_buffer`` rows
    also pass through a ``tf.data`` shuffle buffer of that many rows (row by row: slower).

    Args:
        source: The rows (e.g. a :class:`~cloudsdk.ml.source.FileSource`).
        target_name: The label column, or ``None``.
        feature_names: The feature columns (default: all but the target), in this order.
        batch_size: Rows per batch.
        shuffle: Shuffle per epoch.
        shuffle_buffer: Rows in an extra row-level shuffle buffer (default: none).
        num_epochs: Passes over the data (``None``: repeat forever).
        seed: The shuffle's seed (default: a random one); seeded pipelines are deterministic.
        num_parallel_reads: Units read at once (default: up to 4, at most the CPU count).
        prefetch: Prefetch batches (``tf.data.AUTOTUNE``).
        drop_remainder: Drop each epoch's last, short batch.
        stack_features: Stack numeric scalar features into one ``[B, F]`` tensor.

    Returns:
        The ``tf.data.Dataset``, ready for ``model.fit``.

    Raises:
        InvalidArgumentError: Unknown target or feature names, bad sizes.
        UnsupportedError: A column with no tensor form.
        ImportError: TensorFlow is not installed.

    Example::

        ds = tf_dataset(source, "label", batch_size=512, shuffle=True, seed=1, num_epochs=3)
        model.fit(ds)
    """
    tf = _tf()
    _check(batch_size, num_epochs, shuffle_buffer, num_parallel_reads)
    selection = select_columns(source.schema, target_name, feature_names, stack_features=stack_features)
    units = source.units()
    n = len(units)
    seed_value = _seed(shuffle, seed)
    signature = _signature(tf, selection)
    has_ragged = any(isinstance(s, tf.RaggedTensorSpec) for s in signature.values())
    cycle = num_parallel_reads or _default_reads(n)
    deterministic = seed is not None or not shuffle
    orders: dict[int, list[int]] = {}

    def generate(epoch: Any, position: Any) -> Iterator[dict[str, Any]]:
        e, p = int(epoch), int(position)
        order = orders.get(e)
        if order is None:
            order = epoch_order(n, shuffle=shuffle, seed=seed_value, epoch=e)
            orders.clear()
            orders[e] = order
        i = order[p]
        for chunk in unit_chunks(source, units[i], i, selection, shuffle=shuffle, seed=seed_value, epoch=e):
            for start in range(0, chunk.rows, _CHUNK_ROWS):
                yield _to_tf(tf, selection, chunk.slice(start, start + _CHUNK_ROWS))

    def read_unit(epoch: Any, position: Any) -> Any:
        return tf.data.Dataset.from_generator(generate, args=(epoch, position), output_signature=signature)

    def one_epoch(epoch: Any) -> Any:
        positions = tf.data.Dataset.range(n)
        chunks = positions.interleave(
            lambda p: read_unit(epoch, p),
            cycle_length=cycle, block_length=1, num_parallel_calls=cycle, deterministic=deterministic)
        if shuffle_buffer:
            rows = chunks.unbatch().shuffle(shuffle_buffer, seed=seed_value % 2**31)
            return rows.batch(batch_size, drop_remainder=drop_remainder)
        return _batched(tf, chunks, batch_size, drop_remainder, has_ragged)

    epochs = tf.data.Dataset.range(_MAX_EPOCHS if num_epochs is None else num_epochs)
    ds = epochs.flat_map(one_epoch).map(_structure(selection))
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds


# ---------------------------------------------------------------------- TFRecord files
def iter_tfrecords(filesystem: pafs.FileSystem, path: str, *, verify: bool = False) -> Iterator[bytes]:
    """The serialized records of one TFRecord file, streamed from ``filesystem``.

    A TFRecord file is a sequence of frames: ``uint64 length``, ``uint32`` masked CRC-32C
    of the length, the record, ``uint32`` masked CRC-32C of the record (little-endian).

    Args:
        filesystem: Where the file is (local disk, S3, ...).
        path: The file.
        verify: Check both checksums of every record (needs ``google-crc32c``).

    Raises:
        DataValidationError: A truncated file, or a checksum mismatch with ``verify``.
        NotFoundError, StorageError: The file cannot be read.
    """
    check = _crc_checker() if verify else None
    stream = _storage_call(path, lambda: filesystem.open_input_stream(path))
    buf, pos = b"", 0

    def fill(size: int) -> bool:
        """Make ``size`` bytes available from ``pos``; False at the end of the file."""
        nonlocal buf, pos
        while len(buf) - pos < size:
            want = max(_READ_BLOCK, size - (len(buf) - pos))
            block = _storage_call(path, lambda want=want: stream.read(want))
            if not block:
                return False
            buf, pos = buf[pos:] + block, 0
        return True

    with stream:
        while True:
            if not fill(12):
                if len(buf) == pos:
                    return
                raise DataValidationError(f"{path}: truncated TFRecord frame header", path=path)
            (length,) = struct.unpack_from("<Q", buf, pos)
            if not fill(16 + length):
                raise DataValidationError(f"{path}: truncated TFRecord record", path=path)
            record = buf[pos + 12:pos + 12 + length]
            if check is not None:
                check(path, buf[pos:pos + 8], buf[pos + 8:pos + 12], record,
                      buf[pos + 12 + length:pos + 16 + length])
            yield record
            pos += 16 + length


def _crc_checker() -> Callable[[str, bytes, bytes, bytes, bytes], None]:
    import google_crc32c

    def masked(data: bytes) -> int:
        crc = google_crc32c.value(data)
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    def check(path: str, header: bytes, header_crc: bytes, record: bytes, record_crc: bytes) -> None:
        if struct.unpack("<I", header_crc)[0] != masked(header) or \
                struct.unpack("<I", record_crc)[0] != masked(record):
            raise DataValidationError(f"{path}: TFRecord checksum mismatch", path=path)

    return check


def tfrecord_dataset(filesystem: pafs.FileSystem, files: Sequence[str], feature_spec: Mapping[str, Any],
                     *, target_name: str | None = None, batch_size: int = 256, shuffle: bool = False,
                     shuffle_buffer: int | None = None, num_epochs: int | None = 1,
                     seed: int | None = None, num_parallel_reads: int | None = None,
                     prefetch: bool = True, drop_remainder: bool = False, verify: bool = False) -> Any:
    """A ``tf.data.Dataset`` of parsed ``tf.train.Example`` batches from TFRecord files on
    any ``pyarrow.fs`` filesystem (S3 included, without tensorflow-io).

    The records of each file are read in Python (:func:`iter_tfrecords`), handed to
    TensorFlow in chunks of thousands, cut into batches (``rebatch``) and parsed with
    ``tf.io.parse_example(batch, feature_spec)``. Elements are the parsed dict, or
    ``(dict without the target, target)`` when ``target_name`` is given.

    Args:
        filesystem: Where the files are.
        files: The ``.tfrecord`` files.
        feature_spec: ``{name: tf.io.FixedLenFeature | tf.io.VarLenFeature}``, e.g. from
            ``get_training_dataset_tf_record_schema`` or ``formats.to_tf_feature_spec``.
        target_name: A key of ``feature_spec`` to split off as the label.
        batch_size: Records per batch.
        shuffle: Shuffle the file order and the records within each file, per epoch.
        shuffle_buffer: Records in an extra ``tf.data`` shuffle buffer.
        num_epochs: Passes (``None``: forever).
        seed: The shuffle's seed (default: random).
        num_parallel_reads: Files read at once (default: up to 4, at most the CPU count).
        prefetch: Prefetch batches.
        drop_remainder: Drop each epoch's last short batch.
        verify: Verify the records' CRC-32C checksums.

    Returns:
        The dataset.

    Raises:
        InvalidArgumentError: No files, an unknown target, bad sizes.
        ImportError: TensorFlow is not installed.
    """
    tf = _tf()
    _check(batch_size, num_epochs, shuffle_buffer, num_parallel_reads)
    paths = [str(f) for f in files]
    if not paths:
        raise InvalidArgumentError("no TFRecord files given")
    spec = dict(feature_spec)
    if target_name is not None and target_name not in spec:
        raise InvalidArgumentError(f"target {target_name!r} is not in the feature spec; its keys are "
                                   f"{sorted(spec)}", target_name=target_name, candidates=sorted(spec))
    n = len(paths)
    seed_value = _seed(shuffle, seed)
    cycle = num_parallel_reads or _default_reads(n)
    deterministic = seed is not None or not shuffle

    def generate(epoch: Any, position: Any) -> Iterator[np.ndarray]:
        e, p = int(epoch), int(position)
        i = epoch_order(n, shuffle=shuffle, seed=seed_value, epoch=e)[p]
        records = iter_tfrecords(filesystem, paths[i], verify=verify)
        if shuffle:
            everything = list(records)
            order = np.random.default_rng([seed_value & 0xFFFF_FFFF_FFFF_FFFF, e, 1, i]).permutation(len(everything))
            records = iter([everything[k] for k in order])
            del everything
        while True:
            chunk = [r for _, r in zip(range(_RECORDS_PER_CHUNK), records, strict=False)]
            if not chunk:
                return
            yield np.array(chunk, dtype=object)

    signature = tf.TensorSpec([None], tf.string)

    def one_epoch(epoch: Any) -> Any:
        chunks = tf.data.Dataset.range(n).interleave(
            lambda p: tf.data.Dataset.from_generator(generate, args=(epoch, p), output_signature=signature),
            cycle_length=cycle, block_length=1, num_parallel_calls=cycle, deterministic=deterministic)
        if shuffle_buffer:
            return chunks.unbatch().shuffle(shuffle_buffer, seed=seed_value % 2**31).batch(
                batch_size, drop_remainder=drop_remainder)
        return _batched(tf, chunks, batch_size, drop_remainder, False)

    def parse(serialized: Any) -> Any:
        parsed = tf.io.parse_example(serialized, spec)
        if target_name is None:
            return parsed
        label = parsed.pop(target_name)
        return parsed, label

    epochs = tf.data.Dataset.range(_MAX_EPOCHS if num_epochs is None else num_epochs)
    ds = epochs.flat_map(one_epoch).map(parse, num_parallel_calls=tf.data.AUTOTUNE,
                                        deterministic=deterministic)
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds
