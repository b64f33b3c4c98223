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
                return pa.Table.from_pandas(data, preserve_index=False)
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
