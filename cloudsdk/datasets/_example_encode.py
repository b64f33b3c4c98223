"""Serialising Arrow rows as ``tf.train.Example`` protobufs, vectorised with numpy.

Each row's bytes are built from *pieces*: a :class:`_Fixed` piece has the same width in every
row (a constant tag, fixed-width float payloads), a :class:`_Ragged` one its own length in
each row (varints, strings); :func:`_assemble` concatenates them row by row. The public
entry points (``encode_batch``, ``iter_records``, ``encode_records``) are in
:mod:`cloudsdk.datasets.tfrecord`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cloudsdk.datasets._arrow_compat import half_to_float32
from cloudsdk.datasets._feature_spec import _KIND_TAG, _Spec
from cloudsdk.errors import DataValidationError

_TARGET_CHUNK_BYTES = 8 << 20  # rows are encoded in chunks of about this many output bytes


# --------------------------------------------------------------------------- byte assembly


@dataclass
class _Fixed:
    """A piece with the same width in every row: ``mat`` is (rows, k) or (1, k) broadcast."""

    mat: np.ndarray

    def lens(self, n: int) -> np.ndarray:
        return np.full(n, self.mat.shape[1], dtype=np.int64)


@dataclass
class _Ragged:
    """A piece of ``lens[i]`` bytes in row ``i``, the rows' bytes one after another in ``flat``."""

    lens: np.ndarray
    flat: np.ndarray


_Piece = _Fixed | _Ragged


def _const(data: bytes) -> _Fixed:
    return _Fixed(np.frombuffer(data, dtype=np.uint8).reshape(1, -1))


def _piece_lens(p: _Piece, n: int) -> np.ndarray:
    return p.lens(n) if isinstance(p, _Fixed) else p.lens


def _width(p: _Piece) -> int:
    return int(p.mat.shape[1]) if isinstance(p, _Fixed) else -1


def _compact(pieces: Sequence[_Piece]) -> list[_Piece]:
    """Merge neighbouring constant pieces; drop empty ones."""
    out: list[_Piece] = []
    for p in pieces:
        if isinstance(p, _Fixed) and p.mat.shape[1] == 0:
            continue
        if (out and isinstance(p, _Fixed) and p.mat.shape[0] == 1
                and isinstance(out[-1], _Fixed) and out[-1].mat.shape[0] == 1):
            last = out[-1]
            assert isinstance(last, _Fixed)
            out[-1] = _Fixed(np.concatenate([last.mat, p.mat], axis=1))
        else:
            out.append(p)
    return out


def _assemble(pieces: Sequence[_Piece], n: int) -> _Ragged:
    """Concatenate the pieces row by row: row ``i`` is piece0[i] + piece1[i] + ..."""
    pieces = _compact(pieces)
    if all(isinstance(p, _Fixed) for p in pieces):
        width = sum(_width(p) for p in pieces)
        out2d = np.empty((n, width), dtype=np.uint8)
        consts = [p for p in pieces if isinstance(p, _Fixed) and p.mat.shape[0] == 1]
        if len(consts) > 1:  # one contiguous copy of a template row instead of a strided one each
            template = np.zeros(width, dtype=np.uint8)
            col = 0
            for p in pieces:
                assert isinstance(p, _Fixed)
                if p.mat.shape[0] == 1:
                    template[col:col + p.mat.shape[1]] = p.mat[0]
                col += p.mat.shape[1]
            out2d[:] = template
        col = 0
        for p in pieces:
            assert isinstance(p, _Fixed)
            k = p.mat.shape[1]
            if not (len(consts) > 1 and p.mat.shape[0] == 1):
                out2d[:, col:col + k] = p.mat
            col += k
        return _Ragged(np.full(n, width, dtype=np.int64), out2d.reshape(-1))
    row_lens = np.zeros(n, dtype=np.int64)
    for p in pieces:
        row_lens += _piece_lens(p, n)
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(row_lens[:-1], out=starts[1:])
    total = int(row_lens.sum())
    out = np.empty(total, dtype=np.uint8)
    cur = starts.copy()
    for p in pieces:
        if isinstance(p, _Fixed):
            k = p.mat.shape[1]
            if p.mat.shape[0] == 1 and k == 1:
                out[cur] = p.mat[0, 0]
            else:
                out[cur[:, None] + np.arange(k)] = p.mat
            cur += k
        else:
            m = int(p.lens.sum())
            if m:
                src = np.zeros(n, dtype=np.int64)
                np.cumsum(p.lens[:-1], out=src[1:])
                out[np.repeat(cur - src, p.lens) + np.arange(m)] = p.flat
            cur += p.lens
    return _Ragged(row_lens, out)


def _varint_sizes(v: np.ndarray) -> np.ndarray:
    sizes = np.ones(len(v), dtype=np.int64)
    if len(v) == 0:
        return sizes
    vmax = int(v.max())
    for k in range(1, 10):
        limit = 1 << (7 * k)
        if vmax < limit:
            break
        sizes += v >= np.uint64(limit)
    return sizes


def _varint(values: np.ndarray) -> _Piece:
    """Protobuf varints of ``values`` (any integer dtype; negative int64 as 10 bytes)."""
    v = values.astype(np.int64, copy=False).view(np.uint64)
    n = len(v)
    if n and bool((v == v[0]).all()):
        enc = _varint_scalar(int(v[0]))
        return _Fixed(np.frombuffer(enc, dtype=np.uint8).reshape(1, -1))
    sizes = _varint_sizes(v)
    width = int(sizes.max()) if n else 1
    shifts = (np.arange(width, dtype=np.uint64) * np.uint64(7))
    groups = ((v[:, None] >> shifts) & np.uint64(0x7F)).astype(np.uint8)
    groups[np.arange(width) < (sizes[:, None] - 1)] |= 0x80
    if n and bool((sizes == width).all()):
        return _Fixed(groups)
    return _Ragged(sizes, groups[np.arange(width) < sizes[:, None]])


def _varint_scalar(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _vsize(values: np.ndarray) -> np.ndarray:
    return _varint_sizes(values.astype(np.int64, copy=False).view(np.uint64))


def _row_sums(per_value: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sum ``per_value`` over each row's ``counts[i]`` consecutive values."""
    cs = np.zeros(len(per_value) + 1, dtype=np.int64)
    np.cumsum(per_value, out=cs[1:])
    ends = np.cumsum(counts)
    return cs[ends] - cs[ends - counts]


# --------------------------------------------------------------------------- encoding


def _flat_values(arr: pa.Array, spec: _Spec, valid: np.ndarray | None) -> tuple[pa.Array, np.ndarray]:
    """The values of the valid rows, flattened in row order, and each row's value count."""
    n = len(arr)
    if not spec.shape:
        values = arr if valid is None else arr.filter(pa.array(valid))
        counts = np.ones(n, dtype=np.int64) if valid is None else valid.astype(np.int64)
        return values, counts
    size = spec.size
    if spec.fixed:
        starts = np.arange(n, dtype=np.int64) * size
        level = arr
        counts_all = np.full(n, size, dtype=np.int64)
    else:
        offsets = np.asarray(arr.offsets, dtype=np.int64)
        level = arr.values
        starts = offsets[:-1] * size
        counts_all = np.diff(offsets) * size
    base = 0  # where the leaf values of element 0 start, through each level's offset
    while pa.types.is_fixed_size_list(level.type):
        base = (base + level.offset) * level.type.list_size
        level = level.values
    flat = level
    counts = counts_all if valid is None else np.where(valid, counts_all, 0)
    total = int(counts.sum())
    first = starts + base
    if valid is None and n and bool((first[1:] == first[:-1] + counts[:-1]).all()):
        values = flat.slice(int(first[0]), total)
    elif n:
        prefix = np.cumsum(counts) - counts
        idx = np.repeat(first - prefix, counts) + np.arange(total, dtype=np.int64)
        values = flat.take(pa.array(idx))
    else:
        values = flat.slice(0, 0)
    return values, counts


def _int_values(values: pa.Array, spec: _Spec) -> np.ndarray:
    t = values.type
    if pa.types.is_dictionary(t):
        values = values.cast(t.value_type)
        t = values.type
    if pa.types.is_boolean(t):
        values = values.cast(pa.int8())
    elif pa.types.is_timestamp(t):
        values = pc.cast(values, pa.timestamp("us", tz=t.tz), safe=False).cast(pa.int64())
    elif pa.types.is_date64(t):
        values = values.cast(pa.date32())
    if pa.types.is_date32(values.type):
        values = values.cast(pa.int32())
    out = values.to_numpy(zero_copy_only=False)
    if out.dtype == np.uint64:
        return out.view(np.int64)
    return out.astype(np.int64, copy=False)


def _no_nulls(values: pa.Array, spec: _Spec) -> None:
    if values.null_count:
        raise DataValidationError(
            f"column {spec.name!r} has null values inside its arrays; tfrecords cannot "
            "write them (only a whole value may be null)", column=spec.name)


def _column_pieces(arr: pa.Array, spec: _Spec) -> list[_Piece]:
    """The bytes of this column's map entry in each row's Features (none for null rows)."""
    n = len(arr)
    valid = None
    if arr.null_count:
        valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    values, counts = _flat_values(arr, spec, valid)
    rows = counts if valid is None else counts[valid]
    m = len(rows)  # the rows that get the feature
    body: list[_Piece]
    if spec.dtype == "float32":
        if pa.types.is_float16(values.type):
            values = half_to_float32(values)
        if values.null_count:
            values = values.fill_null(float("nan"))
        data = values.to_numpy(zero_copy_only=False).astype("<f4", copy=False)
        datalen = rows * 4
        if spec.fixed:
            payload: _Piece = _Fixed(data.view(np.uint8).reshape(m, spec.size * 4))
        else:
            payload = _Ragged(datalen, data.view(np.uint8))
        body = [_const(b"\x0a"), _varint(datalen), payload]
        list_len = 1 + _vsize(datalen) + datalen
    elif spec.dtype == "int64":
        _no_nulls(values, spec)
        ints = _int_values(values, spec)
        enc = _varint(ints)
        sizes = _piece_lens(enc, len(ints))
        if isinstance(enc, _Fixed) and enc.mat.shape[0] == 1:
            enc = _Fixed(np.broadcast_to(enc.mat, (len(ints), enc.mat.shape[1])))
        flat = enc.mat.reshape(-1) if isinstance(enc, _Fixed) else enc.flat
        payload_len = _row_sums(sizes, rows)
        body = [_const(b"\x0a"), _varint(payload_len), _Ragged(payload_len, flat)]
        list_len = 1 + _vsize(payload_len) + payload_len
    else:
        _no_nulls(values, spec)
        t = values.type
        if pa.types.is_dictionary(t):
            values = values.cast(t.value_type)
        values = values.cast(pa.large_binary())
        bufs = values.buffers()
        offs = np.frombuffer(bufs[1], dtype=np.int64)[values.offset:values.offset + len(values) + 1]
        blob = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.empty(0, np.uint8)
        blob = blob[offs[0]:offs[-1]] if len(offs) else blob[:0]
        vlens = np.diff(offs)
        entries = _assemble([_const(b"\x0a"), _varint(vlens), _Ragged(vlens, blob)], len(vlens))
        list_len = _row_sums(entries.lens, rows)
        body = [_Ragged(list_len, entries.flat)]
    key = spec.name.encode()
    feat_len = 1 + _vsize(list_len) + list_len
    keyhdr = b"\x0a" + _varint_scalar(len(key)) + key + b"\x12"
    entry_len = len(keyhdr) + _vsize(feat_len) + feat_len
    pieces: list[_Piece] = [
        _const(b"\x0a"), _varint(entry_len), _const(keyhdr), _varint(feat_len),
        _const(bytes([_KIND_TAG[spec.dtype]])), _varint(list_len), *body,
    ]
    if valid is None:
        return pieces
    seg = _assemble(pieces, m)
    lens = np.zeros(n, dtype=np.int64)
    lens[valid] = seg.lens
    return [_Ragged(lens, seg.flat)]


def _conform(batch: pa.RecordBatch | pa.Table, specs: Sequence[_Spec]) -> list[pa.Array]:
    cols = []
    for s in specs:
        col = batch.column(s.name)
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        cols.append(col)
    return cols


def _chunks(batch: pa.RecordBatch | pa.Table) -> Iterator[pa.RecordBatch | pa.Table]:
    n = batch.num_rows
    per_row = max(1, batch.nbytes // max(n, 1)) * 2 + 16 * batch.num_columns
    step = max(1, _TARGET_CHUNK_BYTES // per_row)
    for start in range(0, n, step):
        yield batch.slice(start, step)


def _examples(batch: pa.RecordBatch | pa.Table, specs: Sequence[_Spec]) -> tuple[list[_Piece], np.ndarray]:
    """The pieces of each row's serialised Example (without framing) and their lengths."""
    n = batch.num_rows
    pieces: list[_Piece] = []
    for s, col in zip(specs, _conform(batch, specs), strict=True):
        pieces.extend(_column_pieces(col, s))
    features_len = np.zeros(n, dtype=np.int64)
    for p in pieces:
        features_len += _piece_lens(p, n)
    return [_const(b"\x0a"), _varint(features_len), *pieces], 1 + _vsize(features_len) + features_len
