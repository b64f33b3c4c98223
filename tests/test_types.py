"""Every feature type survives a write and a read in every dataframe type that can hold it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import cloudsdk

UTC = dt.UTC

# name -> (arrow type, four python values, None where the type allows nulls)
CASES: dict[str, tuple[pa.DataType, list[Any]]] = {
    "int8": (pa.int8(), [-128, 127, None, 0]),
    "int16": (pa.int16(), [-(2**15), 2**15 - 1, None, 7]),
    "int32": (pa.int32(), [-(2**31), 2**31 - 1, None, 7]),
    "int64": (pa.int64(), [-(2**53), 2**53, None, 7]),
    "int64_extremes": (pa.int64(), [-(2**63), 2**63 - 1, 0, 1]),
    "uint8": (pa.uint8(), [0, 255, None, 7]),
    "uint16": (pa.uint16(), [0, 2**16 - 1, None, 7]),
    "uint32": (pa.uint32(), [0, 2**32 - 1, None, 7]),
    "uint64": (pa.uint64(), [0, 2**63 - 1, 2**62, 7]),
    "float32": (pa.float32(), [1.5, -2.25, None, 3.0e38]),
    "float64": (pa.float64(), [1.5, -2.25, None, 1e300]),
    "bool": (pa.bool_(), [True, False, None, True]),
    "string": (pa.string(), ["a", "é ü 漢", None, ""]),
    "large_string": (pa.large_string(), ["a", "é ü 漢", None, ""]),
    "date32": (pa.date32(), [dt.date(2020, 2, 29), dt.date(1900, 1, 1), None, dt.date(2999, 12, 31)]),
    "timestamp_us": (pa.timestamp("us"), [dt.datetime(2020, 1, 1, 1, 2, 3, 456789), dt.datetime(1970, 1, 1),
                                          None, dt.datetime(2100, 12, 31, 23, 59, 59, 999999)]),
    "timestamp_us_utc": (pa.timestamp("us", tz="UTC"), [dt.datetime(2020, 1, 1, 1, 2, 3, 456789, tzinfo=UTC),
                                                        dt.datetime(1970, 1, 1, tzinfo=UTC), None,
                                                        dt.datetime(2100, 12, 31, tzinfo=UTC)]),
    "timestamp_us_paris": (pa.timestamp("us", tz="Europe/Paris"),
                           [dt.datetime(2020, 7, 1, 12, 0, tzinfo=UTC), dt.datetime(2020, 1, 1, tzinfo=UTC), None,
                            dt.datetime(1999, 12, 31, 23, 0, tzinfo=UTC)]),
    "timestamp_ns": (pa.timestamp("ns"), [dt.datetime(2020, 1, 1, 1, 2, 3, 456789), dt.datetime(1970, 1, 1),
                                          None, dt.datetime(2200, 1, 1, 0, 0, 0, 1)]),
    "decimal": (pa.decimal128(10, 2), [Decimal("1.23"), Decimal("-99999999.99"), None, Decimal("0.00")]),
    "binary": (pa.binary(), [b"\x00\x01\xff", b"", None, b"abc"]),
    "embedding": (pa.list_(pa.float32(), 4), [[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0], None,
                                              [0.5, -1.0, 1e-3, 2.0**20]]),
    "list_int64": (pa.list_(pa.int64()), [[1], [], None, [1, 2, 3, 4, 5]]),
    "image_3x3": (pa.list_(pa.list_(pa.int64())), [[[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[0] * 3] * 3, None,
                                                   [[9, 8, 7], [6, 5, 4], [3, 2, 1]]]),
    "categorical": (pa.dictionary(pa.int32(), pa.string()), ["red", "blue", None, "red"]),
}

READ_TYPES = ["pyarrow", "pandas", "polars", "numpy", "python"]


def _table(case: str) -> pa.Table:
    arrow_type, values = CASES[case]
    return pa.table({"id": pa.array(range(len(values)), pa.int64()), "v": pa.array(values, arrow_type)})


def _py(value: Any) -> Any:
    """A value of any dataframe library as plain Python, with every kind of missing value as None."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating) and np.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.ndarray):
        return [_py(v) for v in value]
    if isinstance(value, list | tuple):
        return [_py(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _same(got: Any, expected: Any) -> bool:
    """``got`` (from any read type) holds the value ``expected`` (python, as written)."""
    got = _py(got)
    if expected is None or isinstance(expected, bool) or isinstance(got, bool):
        return got is expected
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(
            _same(g, e) for g, e in zip(got, expected, strict=True))
    if isinstance(expected, float) and isinstance(got, float):
        return bool(got == pytest.approx(expected, rel=1e-7))
    return bool(got == expected)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One store for the module; each case's feature group is written once, on first use."""
    conn = cloudsdk.connect(path=tmp_path_factory.mktemp("types") / "store")
    yield {"fs": conn.get_feature_store(), "groups": {}}
    conn.close()


def _group(store: dict[str, Any], case: str) -> cloudsdk.FeatureGroup:
    groups: dict[str, cloudsdk.FeatureGroup] = store["groups"]
    if case not in groups:
        groups[case] = store["fs"].create_feature_group(
            f"t_{case}", data=_table(case), primary_key=["id"], statistics=False)
    return groups[case]


# ---------------------------------------------------------------- written from pyarrow


def _round_trip_params() -> list[Any]:
    params = []
    for case in CASES:
        for read_type in READ_TYPES:
            params.append(pytest.param(case, read_type, id=f"{case}-{read_type}"))
    return params


@pytest.mark.parametrize(("case", "read_type"), _round_trip_params())
def test_round_trip(store: dict[str, Any], case: str, read_type: str) -> None:
    written = _table(case)
    expected = CASES[case][1]
    fg = _group(store, case)
    out = fg.read(read_type)
    if read_type == "pyarrow":
        assert out.schema.equals(written.schema), (out.schema, written.schema)
        assert out.sort_by("id").equals(written)
        return
    if read_type == "pandas":
        assert list(out.columns) == ["id", "v"]
        rows = out.sort_values("id")[["id", "v"]].itertuples(index=False, name=None)
        got = [v for _, v in rows]
    elif read_type == "polars":
        assert out.columns == ["id", "v"]
        got = [v for _, v in sorted(out.rows(), key=lambda r: r[0])]
    elif read_type == "numpy":
        assert isinstance(out, np.ndarray) and out.shape == (len(expected), 2)
        got = [row[1] for row in sorted(out, key=lambda r: r[0])]
    else:
        assert isinstance(out, list) and all(isinstance(r, list) and len(r) == 2 for r in out)
        got = [v for _, v in sorted(out, key=lambda r: r[0])]
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert _same(g, e), (case, read_type, g, e)


def test_feature_types_shown_to_users(store: dict[str, Any]) -> None:
    shown = {case: _group(store, case).get_feature("v").type for case in CASES}
    assert shown == {
        "int8": "tinyint", "int16": "smallint", "int32": "int", "int64": "bigint", "int64_extremes": "bigint",
        "uint8": "smallint", "uint16": "int", "uint32": "bigint", "uint64": "bigint",
        "float32": "float", "float64": "double", "bool": "boolean", "string": "string",
        "large_string": "string", "date32": "date", "timestamp_us": "timestamp",
        "timestamp_us_utc": "timestamp", "timestamp_us_paris": "timestamp", "timestamp_ns": "timestamp", "decimal": "decimal(10,2)",
        "binary": "binary", "embedding": "array<float>[4]", "list_int64": "array<bigint>",
        "image_3x3": "array<array<bigint>>", "categorical": "string",
    }


@pytest.mark.parametrize("case", ["uint64", "timestamp_ns", "embedding", "categorical", "large_string"])
def test_types_survive_append_and_upsert(store: dict[str, Any], case: str) -> None:
    """Types that Delta stores differently keep their logical type across later commits too."""
    fs = store["fs"]
    written = _table(case)
    fg = fs.create_feature_group(f"w_{case}", data=written, statistics=False)
    fg.insert(written.set_column(0, "id", pa.array([10, 11, 12, 13], pa.int64())), "append")
    fg.insert(written.slice(0, 2), "upsert")
    out = fg.read("pyarrow").sort_by("id")
    assert out.schema.equals(written.schema)
    assert out.num_rows == 8
    assert out.column("v").to_pylist() == written.column("v").to_pylist() * 2


def test_embedding_of_the_wrong_length_is_refused(store: dict[str, Any]) -> None:
    from cloudsdk import errors

    fg = _group(store, "embedding")
    before = fg.read("pyarrow")
    bad = pa.table({"id": pa.array([99], pa.int64()), "v": pa.array([[1.0, 2.0, 3.0]], pa.list_(pa.float32()))})
    with pytest.raises(errors.SchemaMismatchError, match="'v'"):
        fg.insert(bad)
    assert fg.read("pyarrow").equals(before)
    # a variable-length list whose rows all have the fixed length is accepted
    good = pa.table({"id": pa.array([99], pa.int64()), "v": pa.array([[1.0, 2.0, 3.0, 4.0]], pa.list_(pa.float32()))})
    fg.insert(good, "upsert")
    assert fg.read("pyarrow").schema.equals(before.schema)
    fg.insert(pa.table({"id": pa.array([99], pa.int64()), "v": pa.array([[1.0] * 4], pa.list_(pa.float32(), 4))}),
              "upsert")
    assert fg.read("pyarrow").num_rows == before.num_rows + 1


# ---------------------------------------------------------------- written from pandas


PANDAS_CASES: dict[str, pd.Series] = {
    "int8": pd.Series([-128, 127, 0], dtype="int8"),
    "int16": pd.Series([-(2**15), 2**15 - 1, 0], dtype="int16"),
    "int32": pd.Series([-(2**31), 2**31 - 1, 0], dtype="int32"),
    "int64": pd.Series([-(2**63), 2**63 - 1, 0], dtype="int64"),
    "uint8": pd.Series([0, 255, 1], dtype="uint8"),
    "uint16": pd.Series([0, 2**16 - 1, 1], dtype="uint16"),
    "uint32": pd.Series([0, 2**32 - 1, 1], dtype="uint32"),
    "uint64": pd.Series([0, 2**63 - 1, 1], dtype="uint64"),
    "float32": pd.Series([1.5, np.nan, -3.0], dtype="float32"),
    "float64": pd.Series([1.5, np.nan, 1e300], dtype="float64"),
    "bool": pd.Series([True, False, True]),
    "str": pd.Series(["a", None, "é"], dtype="str"),
    "datetime_us": pd.Series(pd.to_datetime(["2020-01-01 00:00:00.000001", None, "1999-12-31 23:59:59.5"],
                                            format="ISO8601")).astype("datetime64[us]"),
    "datetime_ns": pd.Series(pd.to_datetime(["2020-01-01 00:00:00.000001", None, "1999-12-31 23:59:59.5"],
                                            format="ISO8601")).astype("datetime64[ns]"),
    "datetime_utc": pd.Series(pd.to_datetime(["2020-01-01 00:00:00.000001", None, "1999-12-31 23:59:59.5"],
                                             format="ISO8601", utc=True)).astype("datetime64[us, UTC]"),
    "category": pd.Series(["x", None, "y"], dtype="category"),
    "date": pd.Series([dt.date(2020, 1, 1), None, dt.date(1900, 1, 1)], dtype="object"),
    "decimal": pd.Series([Decimal("1.25"), None, Decimal("-3.50")], dtype="object"),
    "bytes": pd.Series([b"a", None, b"\x00"], dtype="object"),
    "embedding": pd.Series([np.array([1, 2, 3, 4], np.float32), np.zeros(4, np.float32),
                            np.array([0.5, 0.25, 0, 1], np.float32)]),
    "list": pd.Series([np.array([1, 2]), np.array([], dtype=np.int64), np.array([3])]),
}

NULLABLE_PANDAS = {
    "Int64": pd.Series([1, None, 2**53 + 1], dtype="Int64"),
    "boolean": pd.Series([True, None, False], dtype="boolean"),
    "Float64": pd.Series([1.5, None, 2.5], dtype="Float64"),
}


@pytest.mark.parametrize("case", list(PANDAS_CASES))
def test_pandas_round_trip(store: dict[str, Any], case: str) -> None:
    df = pd.DataFrame({"id": np.arange(3, dtype=np.int64), "v": PANDAS_CASES[case]})
    fg = store["fs"].create_feature_group(f"pd_{case}", data=df, statistics=False)
    out = fg.read("pandas").sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(out, df)


@pytest.mark.parametrize("case", list(NULLABLE_PANDAS))
def test_pandas_nullable_dtypes_round_trip(store: dict[str, Any], case: str) -> None:
    df = pd.DataFrame({"id": np.arange(3, dtype=np.int64), "v": NULLABLE_PANDAS[case]})
    fg = store["fs"].create_feature_group(f"pdn_{case.lower()}", data=df, statistics=False)
    out = fg.read("pandas").sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(out, df)


def test_pandas_nullable_int64_values_are_exact(store: dict[str, Any]) -> None:
    """Whatever dtype pandas reads back, the exact values are in the store (pyarrow read)."""
    df = pd.DataFrame({"id": np.arange(3, dtype=np.int64), "v": NULLABLE_PANDAS["Int64"]})
    fg = store["fs"].create_feature_group("pdn_exact", data=df, statistics=False)
    assert fg.read("pyarrow").sort_by("id").column("v").to_pylist() == [1, None, 2**53 + 1]
    assert fg.schema.field("v").type == pa.int64()


# ---------------------------------------------------------------- written from polars


def _polars_cases() -> dict[str, Any]:
    pl = pytest.importorskip("polars")
    return {
        "Int8": pl.Series([1, None, -128], dtype=pl.Int8),
        "UInt32": pl.Series([1, None, 2**32 - 1], dtype=pl.UInt32),
        "UInt64": pl.Series([1, None, 2**63 - 1], dtype=pl.UInt64),
        "Int64": pl.Series([1, None, 2**63 - 1], dtype=pl.Int64),
        "Float32": pl.Series([1.5, None, -2.0], dtype=pl.Float32),
        "Boolean": pl.Series([True, None, False], dtype=pl.Boolean),
        "String": pl.Series(["a", None, "é"], dtype=pl.String),
        "Date": pl.Series([dt.date(2020, 1, 1), None, dt.date(1900, 1, 1)], dtype=pl.Date),
        "Datetime_us": pl.Series([dt.datetime(2020, 1, 1, 0, 0, 0, 1), None, dt.datetime(1970, 1, 1)],
                                 dtype=pl.Datetime("us")),
        "Datetime_us_UTC": pl.Series([dt.datetime(2020, 1, 1, 0, 0, 0, 1, tzinfo=UTC), None,
                                      dt.datetime(1970, 1, 1, tzinfo=UTC)], dtype=pl.Datetime("us", "UTC")),
        "Decimal": pl.Series([Decimal("1.25"), None, Decimal("-3.50")], dtype=pl.Decimal(10, 2)),
        "Binary": pl.Series([b"a", None, b"\x00"], dtype=pl.Binary),
        "List": pl.Series([[1, 2], [], None], dtype=pl.List(pl.Int64)),
        "Array": pl.Series([[1.0, 2.0, 3.0, 4.0], None, [0.0] * 4], dtype=pl.Array(pl.Float32, 4)),
        "Categorical": pl.Series(["x", None, "y"], dtype=pl.Categorical),
    }


@pytest.mark.parametrize("case", ["Int8", "UInt32", "UInt64", "Int64", "Float32", "Boolean", "String", "Date",
                                  "Datetime_us", "Datetime_us_UTC", "Decimal", "Binary", "List", "Array",
                                  "Categorical"])
def test_polars_round_trip(store: dict[str, Any], case: str) -> None:
    pl = pytest.importorskip("polars")
    df = pl.DataFrame({"id": pl.Series([0, 1, 2], dtype=pl.Int64), "v": _polars_cases()[case]})
    fg = store["fs"].create_feature_group(f"pl_{case.lower()}", data=df, statistics=False)
    out = fg.read("polars").sort("id")
    assert out.schema == df.schema
    assert out.equals(df)
