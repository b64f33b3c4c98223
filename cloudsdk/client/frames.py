"""Dataframe conversion: anything a user passes → Arrow, and Arrow → the asked-for type.

Arrow is the common currency between the client and both backends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from cloudsdk.errors import InvalidArgumentError

DataFrameType = Literal["pandas", "numpy", "python", "pyarrow", "polars"]
DATAFRAME_TYPES = ("pandas", "numpy", "python", "pyarrow", "polars")


def to_arrow(data: Any) -> pa.Table:
    """Convert a pandas / polars / pyarrow dataframe (or dict of columns, numpy record array,
    list of dicts) to a pyarrow Table.

    Raises:
        InvalidArgumentError: for anything else, e.g. a 2-D array without column names.
    """
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    module = type(data).__module__.split(".", 1)[0]
    if module == "pandas":
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            index_names = [n for n in data.index.names if n is not None]
            if index_names:
                data = data.reset_index()
            try:
                columns = [str(c) for c in data.columns]
                arrays = _multidim_columns(data)
                table = pa.Table.from_pandas(data.drop(columns=list(arrays)) if arrays else data,
                                             preserve_index=False)
                if arrays:
                    for name, array in arrays.items():
                        table = table.append_column(name, array)
                    table = table.select(columns)
                return table
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise InvalidArgumentError(f"cannot convert the pandas DataFrame to Arrow: {exc}") from exc
    if module == "polars":
        return data.to_arrow()
    if isinstance(data, np.ndarray):
        if data.dtype.names:
            return pa.table({n: data[n] for n in data.dtype.names})
        raise InvalidArgumentError(
            "a plain numpy array has no column names: pass a pandas DataFrame, a dict of "
            "columns or a numpy record array"
        )
    if isinstance(data, Mapping):
        try:
            return pa.table(dict(data))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
            raise InvalidArgumentError(f"cannot convert the dict of columns to Arrow: {exc}") from exc
    if isinstance(data, list) and data and all(isinstance(r, Mapping) for r in data):
        return pa.Table.from_pylist(data)
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    raise InvalidArgumentError(
        f"cannot use a {type(data).__name__} as a dataframe: pass pandas, polars or pyarrow"
    )


def _dense(value: np.ndarray) -> np.ndarray:
    """A numpy array of arrays (what pandas gives for a nested list column) as one n-D array;
    other arrays unchanged. Ragged contents stay an object array."""
    if value.dtype != object or not len(value) or not all(isinstance(v, np.ndarray) for v in value):
        return value
    parts = [_dense(v) for v in value]
    if any(p.shape != parts[0].shape or p.dtype == object for p in parts):
        return value
    return np.stack(parts)


def _multidim_columns(frame: Any) -> dict[str, pa.Array]:
    """Object columns of n-D numpy arrays (n >= 2, one shape per column, e.g. 28x28 images,
    also as pandas gives them back: arrays of arrays) as nested fixed-size lists, which keep
    the shape (pyarrow itself only takes 1-D arrays)."""
    out: dict[str, pa.Array] = {}
    for name in frame.columns:
        col = frame[name]
        if col.dtype != object or not len(col):
            continue
        first = next((v for v in col if v is not None), None)
        if not isinstance(first, np.ndarray):
            continue
        first = _dense(first)
        if first.ndim < 2 or first.dtype == object:
            continue
        values = [_dense(v) if isinstance(v, np.ndarray) else v for v in col]
        if any(not isinstance(v, np.ndarray) or v.shape != first.shape for v in values):
            raise InvalidArgumentError(
                f"column {name!r} holds arrays of shape {first.shape}; every row needs an array of that shape")
        stacked = np.ascontiguousarray(np.stack(values))
        array: pa.Array = pa.array(stacked.reshape(-1))
        for size in reversed(first.shape):
            array = pa.FixedSizeListArray.from_arrays(array, size)
        out[str(name)] = array
    return out


_EXACT_FLOAT_INT = 2**53


def _to_numpy(table: pa.Table) -> np.ndarray:
    """A 2-D array of the rows (as pandas' ``df.to_numpy()``), but never silently rounding:
    when the common dtype is float and an integer column holds values beyond 2**53, the
    array is of dtype object instead."""
    frame = table.to_pandas()
    arr: np.ndarray = frame.to_numpy()
    if arr.dtype.kind == "f":
        for name in frame.columns:
            col = frame[name]
            if col.dtype.kind in "iu" and len(col) and (
                col.max() > _EXACT_FLOAT_INT or col.min() < -_EXACT_FLOAT_INT
            ):
                return frame.to_numpy(dtype=object)
    return arr


def from_arrow(table: pa.Table, dataframe_type: str = "pandas") -> Any:
    """Convert an Arrow table to ``dataframe_type``.

    ``pandas`` (default), ``numpy`` (2-D array), ``python`` (list of rows as lists),
    ``pyarrow`` (Table), ``polars`` (needs polars installed).
    """
    if dataframe_type == "pyarrow":
        return table
    if dataframe_type == "pandas":
        return table.to_pandas()
    if dataframe_type == "numpy":
        return _to_numpy(table)
    if dataframe_type == "python":
        columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
        return [list(row) for row in zip(*columns, strict=True)] if columns else []
    if dataframe_type == "polars":
        try:
            import polars as pl
        except ImportError as exc:
            raise ImportError("dataframe_type='polars' needs polars: pip install 'cloudsdk[polars]'") from exc
        return pl.from_arrow(table)
    raise InvalidArgumentError(
        f"dataframe_type must be one of {', '.join(DATAFRAME_TYPES)}, got {dataframe_type!r}"
    )
