"""Arrow casts that pyarrow 14 cannot do: half floats and dictionary encoding, with numpy.

Shared by the TFRecord codec (:mod:`cloudsdk.datasets.tfrecord`) and the other formats' readers
and writers (:mod:`cloudsdk.datasets.formats`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def _valid_mask(arr: pa.Array) -> np.ndarray | None:
    if not arr.null_count:
        return None
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def half_to_float32(arr: pa.Array) -> pa.Array:
    """A float16 array as float32 (pyarrow 14 cannot cast half floats)."""
    values = np.frombuffer(arr.buffers()[1], dtype="<f2")[arr.offset:arr.offset + len(arr)]
    valid = _valid_mask(arr)
    return pa.array(values.astype(np.float32), type=pa.float32(), mask=None if valid is None else ~valid)


def float_to_half(arr: pa.Array) -> pa.Array:
    """A float array as float16 (pyarrow 14 cannot cast to half floats)."""
    valid = _valid_mask(arr)
    values = arr.fill_null(0.0) if valid is not None else arr
    return pa.array(np.asarray(values.to_numpy(zero_copy_only=False)).astype(np.float16),
                    type=pa.float16(), mask=None if valid is None else ~valid)


def dictionary_array(values: pa.Array, t: pa.DictionaryType) -> pa.Array:
    """``values`` dictionary-encoded as type ``t`` (pyarrow 14 cannot cast to a dictionary)."""
    encoded = values.dictionary_encode()
    return pa.DictionaryArray.from_arrays(encoded.indices.cast(t.index_type),
                                          encoded.dictionary.cast(t.value_type), ordered=t.ordered)
