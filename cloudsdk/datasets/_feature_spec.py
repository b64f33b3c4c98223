"""How each column of a logical Arrow schema maps to a ``tf.train.Example`` Feature.

The rules are described in :mod:`cloudsdk.datasets.tfrecord`; the encoder
(:mod:`cloudsdk.datasets._example_encode`) and the decoder
(:mod:`cloudsdk.datasets._example_decode`) both work from each column's :class:`_Spec`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyarrow as pa

from cloudsdk.errors import SchemaMismatchError

_KIND_TAG = {"string": 0x0A, "float32": 0x12, "int64": 0x1A}  # Feature's oneof field tags


@dataclass(frozen=True)
class _Spec:
    """How one column is written: its Feature dtype, shape and Arrow types."""

    name: str
    dtype: str  # "int64" | "float32" | "string"
    shape: tuple[int | None, ...]  # () for scalars; None only first (a variable list)
    arrow_type: pa.DataType  # the logical type of the column
    scalar_type: pa.DataType  # the logical type of its elements
    nullable: bool

    @property
    def fixed(self) -> bool:
        return None not in self.shape

    @property
    def size(self) -> int:
        """Values per row of a fixed column; values per outer element of a variable one."""
        return math.prod(d for d in self.shape if d is not None)


def _scalar_dtype(name: str, t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        return _scalar_dtype(name, t.value_type)
    if (pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_timestamp(t)
            or pa.types.is_date(t)):
        return "int64"
    if pa.types.is_floating(t):
        return "float32"
    if (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
            or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)):
        return "string"
    raise SchemaMismatchError(
        f"tfrecords cannot hold column {name!r} of type {t}: tf.train.Example holds integers, "
        "floats, strings/bytes, timestamps, dates and (nested) lists of them; "
        "use data_format='parquet' or 'orc' for this column", column=name)


def _spec(field: pa.Field) -> _Spec:
    t = field.type
    shape: list[int | None] = []
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        shape.append(None)
        t = t.value_type
    while pa.types.is_fixed_size_list(t):
        shape.append(t.list_size)
        t = t.value_type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_struct(t) or pa.types.is_map(t):
        raise SchemaMismatchError(
            f"tfrecords cannot hold column {field.name!r} of type {field.type}: only the outermost "
            "dimension of an array may vary in length, and structs/maps have no Feature kind; "
            "use data_format='parquet', 'orc' or 'avro'", column=field.name)
    return _Spec(field.name, _scalar_dtype(field.name, t), tuple(shape), field.type, t, field.nullable)


def _specs(schema: pa.Schema) -> list[_Spec]:
    return [_spec(f) for f in schema]
