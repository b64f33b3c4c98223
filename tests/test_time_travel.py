"""Time travel: commits, reads as of a commit or a time, changes between commits, deletes by
key, compaction and retention, SQL over the past; embedded and remote (the ``fs`` fixture)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pandas as pd
import pytest

import cloudsdk
from cloudsdk import featurestore
from cloudsdk.errors import (
    CommitNotFoundError,
    DataValidationError,
    InvalidArgumentError,
    SchemaMismatchError,
    SQLError,
)


def _rows(df: pd.DataFrame, key: str = "id") -> list[tuple[Any, ...]]:
    return [tuple(r) for r in df.sort_values(key).itertuples(index=False)]


def _history(fs: cloudsdk.FeatureStore) -> tuple[Any, list[dt.datetime]]:
    """A group with five commits: create, append, upsert, delete, overwrite; and the times
    between them."""
    fg = fs.create_feature_group("prices", data=pd.DataFrame({"id": [1, 2, 3], "price": [1.0, 2.0, 3.0]}),
                                 primary_key=["id"], statistics=False)
    marks = []
    for step in (
        lambda: fg.insert(pd.DataFrame({"id": [4], "price": [4.0]})),
        lambda: fg.insert(pd.DataFrame({"id": [2, 5], "price": [20.0, 5.0]}), mode="upsert"),
        lambda: fg.delete(pd.DataFrame({"id": [1]})),
        lambda: fg.insert(pd.DataFrame({"id": [5, 6], "price": [50.0, 6.0]}), mode="overwrite"),
    ):
        time.sleep(0.02)
        marks.append(dt.datetime.now(dt.UTC))
        time.sleep(0.02)
        step()
    return fg, marks


STATES = {
    0: [(1, 1.0), (2, 2.0), (3, 3.0)],
    1: [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)],
    2: [(1, 1.0), (2, 20.0), (3, 3.0), (4, 4.0), (5, 5.0)],
    3: [(2, 20.0), (3, 3.0), (4, 4.0), (5, 5.0)],
    4: [(5, 50.0), (6, 6.0)],
}


def test_commits_and_reads_as_of_ids_and_times(fs: cloudsdk.FeatureStore) -> None:
    fg, marks = _history(fs)
    commits = fg.commit_details()
    assert [c["commit_id"] for c in commits] == [4, 3, 2, 1, 0]
    assert [c["mode"] for c in commits] == ["overwrite", "delete", "upsert", "append", "create"]
    counts = [(c["rows_inserted"], c["rows_updated"], c["rows_deleted"]) for c in commits]
    assert counts == [(2, 0, 4), (0, 0, 1), (1, 1, 0), (1, 0, 0), (3, 0, 0)]
    assert all(dt.datetime.fromisoformat(c["committed_at"]).tzinfo is not None for c in commits)
    assert fg.commit_details(limit=2)[1]["commit_id"] == 3
    for commit, rows in STATES.items():
        assert _rows(fg.read(as_of=commit)) == rows
    # a time: the latest commit at or before it (datetime, naive UTC, ISO string, pandas Timestamp)
    assert _rows(fg.read(as_of=marks[0])) == STATES[0]
    assert _rows(fg.read(as_of=marks[2].replace(tzinfo=None))) == STATES[2]
    assert _rows(fg.read(as_of=marks[3].isoformat())) == STATES[3]
    assert _rows(fg.read(as_of=pd.Timestamp(marks[1]))) == STATES[1]
    assert _rows(fg.read()) == STATES[4]
    # the hidden _commit column stays out of ordinary reads and schemas
    assert list(fg.read().columns) == ["id", "price"]
    assert fg.schema.names == ["id", "price"]
    assert list(fs.sql("SELECT * FROM prices_1").columns) == ["id", "price"]


def test_bad_as_of_values_raise_typed_errors(fs: cloudsdk.FeatureStore) -> None:
    fg, _ = _history(fs)
    first = dt.datetime.fromisoformat(fg.commit_details()[-1]["committed_at"])
    with pytest.raises(CommitNotFoundError, match="before the first commit"):
        fg.read(as_of=first - dt.timedelta(seconds=5))
    with pytest.raises(InvalidArgumentError, match="in the future"):
        fg.read(as_of=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    with pytest.raises(CommitNotFoundError, match="no commit 99"):
        fg.read(as_of=99)
    with pytest.raises(CommitNotFoundError):
        fg.read(as_of=-1)
    for bad in (1.5, True, [1], "yesterday", "3"):
        with pytest.raises(InvalidArgumentError):
            fg.read(as_of=bad)
    with pytest.raises(InvalidArgumentError):
        fg.select_all().as_of(2.5)


def test_read_changes_covers_append_upsert_delete_and_overwrite(fs: cloudsdk.FeatureStore) -> None:
    fg, _ = _history(fs)

    def changes(start: Any, end: Any = None) -> list[tuple[Any, ...]]:
        df = fg.read_changes(start, end)
        assert list(df.columns) == ["id", "price", "_change_type", "_commit", "_commit_time"]
        out = []
        for r in df.to_dict("records"):
            price = None if pd.isna(r["price"]) else r["price"]
            commit = None if pd.isna(r["_commit"]) else int(r["_commit"])
            out.append((int(r["id"]), price, r["_change_type"], commit))
        return sorted(out, key=lambda t: (t[2], t[0]))

    assert changes(0, 1) == [(4, 4.0, "insert", 1)]
    assert changes(1, 2) == [(5, 5.0, "insert", 2), (2, 20.0, "update", 2)]
    assert changes(2, 3) == [(1, None, "delete", None)]
    assert changes(0, 3) == [(1, None, "delete", None), (4, 4.0, "insert", 1), (5, 5.0, "insert", 2),
                             (2, 20.0, "update", 2)]
    # the overwrite rewrote everything: surviving keys are updates, the others deletes
    assert changes(3) == [(2, None, "delete", None), (3, None, "delete", None), (4, None, "delete", None),
                          (6, 6.0, "insert", 4), (5, 50.0, "update", 4)]
    assert changes(None, 0) == [(1, 1.0, "insert", 0), (2, 2.0, "insert", 0), (3, 3.0, "insert", 0)]
    assert changes(2, 2) == []
    times = fg.read_changes(1, 2)["_commit_time"]
    committed = dt.datetime.fromisoformat(fg.commit_details()[2]["committed_at"]).replace(tzinfo=None)
    assert all(abs((t.to_pydatetime() - committed).total_seconds()) < 0.002 for t in times)
    with pytest.raises(InvalidArgumentError, match="after end"):
        fg.read_changes(3, 1)
    with pytest.raises(CommitNotFoundError):
        fg.read_changes(0, 42)


def test_query_as_of_and_joins_keep_each_groups_time(fs: cloudsdk.FeatureStore) -> None:
    fg, marks = _history(fs)
    other = fs.create_feature_group("labels", data=pd.DataFrame({"id": [2, 3, 5], "label": [0, 1, 1]}),
                                    primary_key=["id"], statistics=False)
    other.insert(pd.DataFrame({"id": [2], "label": [7]}), mode="upsert")
    q = fg.select(["id", "price"]).as_of(2)
    assert _rows(q.read()) == STATES[2]
    assert '"prices_1@2"' in q.to_sql()
    joined = fg.select(["id", "price"]).as_of(marks[2]).join(other.select(["label"]).as_of(0))
    assert _rows(joined.read()) == [(2, 20.0, 0), (3, 3.0, 1), (5, 5.0, 1)]
    latest_other = fg.select(["id", "price"]).as_of(2).join(other.select(["label"]))
    assert _rows(latest_other.read()) == [(2, 20.0, 7), (3, 3.0, 1), (5, 5.0, 1)]
    everything_then = fg.select(["id", "price"]).join(other.select(["label"])).as_of(0)
    assert _rows(everything_then.read()) == [(2, 2.0, 0), (3, 3.0, 1)]
    # the same group at two commits in one query (a self-join through time)
    before = fg.select(["id"]).as_of(0).join(fg.select(["price"]).as_of(3), on=["id"])
    assert _rows(before.read()) == [(2, 20.0), (3, 3.0)]
    assert _rows(fs.get_feature_group("prices", 1).read(as_of=0)) == STATES[0]


def test_sql_over_the_past_and_commit_columns(fs: cloudsdk.FeatureStore) -> None:
    fg, marks = _history(fs)
    assert _rows(fs.sql("SELECT id, price FROM prices_1 VERSION AS OF 1")) == STATES[1]
    assert _rows(fs.sql(f"SELECT * FROM prices_1 TIMESTAMP AS OF '{marks[3].isoformat()}'")) == STATES[3]
    assert _rows(fs.sql("SELECT * FROM prices_1", as_of=2)) == STATES[2]
    then_now = fs.sql("SELECT a.id, a.price AS old, b.price AS new FROM prices_1 VERSION AS OF 2 AS a "
                      "JOIN prices_1 AS b ON a.id = b.id")
    assert _rows(then_now) == [(5, 5.0, 50.0)]
    # like Hudi's _hoodie_commit_time: the commit that wrote each row
    rows = fs.sql("SELECT id, _commit, _commit_time FROM prices_1 VERSION AS OF 3 ORDER BY id")
    assert rows["_commit"].tolist() == [2, 0, 1, 2]
    assert str(rows["_commit_time"].dtype).startswith("datetime64")
    commit1 = fg.commit_details()[3]["committed_at"][:23]
    hits = fs.sql(f"SELECT id FROM prices_1 VERSION AS OF 3 WHERE _commit_time = TIMESTAMP '{commit1}'")
    assert hits["id"].tolist() == [4]
    with pytest.raises(SQLError):
        fs.sql("SELECT * FROM prices_1 VERSION AS OF (SELECT 1)")
    with pytest.raises(CommitNotFoundError):
        fs.sql("SELECT * FROM prices_1 VERSION AS OF 12")
    with pytest.raises(InvalidArgumentError):
        fs.sql("SELECT * FROM prices_1 TIMESTAMP AS OF 'not a time'")


def test_delete_by_key_validates_keys(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group("pairs", data=pd.DataFrame({"a": [1, 1, 2], "b": ["x", "y", "x"], "v": [1, 2, 3]}),
                                 primary_key=["a", "b"], statistics=False)
    done = fg.delete(pd.DataFrame({"a": [1, 1, 9], "b": ["y", "y", "z"], "v": [0, 0, 0]}))
    assert done is not None and done["rows_deleted"] == 1 and done["version"] == 1
    assert sorted(map(tuple, fg.read()[["a", "b"]].values.tolist())) == [(1, "x"), (2, "x")]
    empty = fg.delete(pd.DataFrame({"a": pd.Series([], dtype="int64"), "b": pd.Series([], dtype="str")}))
    assert empty is not None and empty["rows_deleted"] == 0 and len(fg.commit_details()) == 2
    with pytest.raises(SchemaMismatchError, match="missing"):
        fg.delete(pd.DataFrame({"a": [1]}))
    with pytest.raises(SchemaMismatchError):
        fg.delete(pd.DataFrame({"a": ["one"], "b": ["x"]}))
    with pytest.raises(DataValidationError, match="null"):
        fg.delete(pd.DataFrame({"a": [1, None], "b": ["x", "x"]}).astype({"a": "Int64"}))
    assert len(fg.commit_details()) == 2


def test_compact_keeps_the_window_and_refuses_vacuumed_commits(fs: cloudsdk.FeatureStore) -> None:
    fg, _ = _history(fs)
    assert fg.retention_hours == 168
    kept = fg.compact()
    assert kept["retention_hours"] == 168 and kept["files_vacuumed"] == 0
    for commit, rows in STATES.items():  # nothing left the window: every commit still reads
        assert _rows(fg.read(as_of=commit)) == rows
    fg.set_retention(0)
    assert fg.retention_hours == 0
    done = fg.compact()
    assert done["retention_hours"] == 0 and done["files_vacuumed"] > 0
    with pytest.raises(CommitNotFoundError, match="vacuumed"):
        fg.read(as_of=2)
    assert _rows(fg.read(as_of=done["version"])) == STATES[4]
    assert _rows(fg.read()) == STATES[4]
    modes = [c["mode"] for c in fg.commit_details()]
    assert "compact" in modes and "retention" in modes
    with pytest.raises(InvalidArgumentError):
        fg.compact(retention_hours=-1)


def test_functional_api_commits_and_as_of(tmp_path: Any) -> None:
    featurestore.connect(path=tmp_path / "store")
    featurestore.create_featuregroup(pd.DataFrame({"id": [1, 2], "x": [1.0, 2.0]}), "f", primary_key="id",
                                     descriptive_statistics=False)
    featurestore.insert_into_featuregroup(pd.DataFrame({"id": [3], "x": [3.0]}), "f", descriptive_statistics=False)
    commits = featurestore.get_featuregroup_commits("f")
    assert [c["commit_id"] for c in commits] == [1, 0]
    assert featurestore.get_featuregroup_commits("f", limit=1)[0]["rows_inserted"] == 1
    assert len(featurestore.get_featuregroup("f", as_of=0)) == 2
    assert featurestore.sql("SELECT count(*) AS n FROM f_1", as_of=0)["n"].tolist() == [2]
    with pytest.raises(cloudsdk.errors.SchemaMismatchError, match="reserved"):
        featurestore.create_featuregroup(pd.DataFrame({"id": [1], "_commit": [1]}), "g", primary_key="id")


def test_changes_keep_feature_types_and_statistics_ignore_commit(fs: cloudsdk.FeatureStore) -> None:
    import pyarrow as pa

    data = pa.table({"k": pa.array(["a", "b"]), "when": pa.array([dt.date(2026, 1, 1)] * 2),
                     "vec": pa.array([[1.0, 2.0], [3.0, 4.0]], pa.list_(pa.float32(), 2)),
                     "n": pa.array([1, 2], pa.int16())})
    fg = fs.create_feature_group("typed", data=data, primary_key=["k"])
    fg.insert(pa.table({"k": ["c"], "when": [dt.date(2026, 1, 2)],
                        "vec": pa.array([[5.0, 6.0]], pa.list_(pa.float32(), 2)),
                        "n": pa.array([3], pa.int16())}))
    fg.delete(pa.table({"k": ["a"]}))
    got = fg.read_changes(0, dataframe_type="pyarrow")
    assert got.schema.field("vec").type == pa.list_(pa.float32(), 2)
    assert got.schema.field("n").type == pa.int16()
    assert got.schema.field("when").type == pa.date32()
    assert got.column("_change_type").to_pylist() == ["insert", "delete"]
    assert got.column("vec").to_pylist() == [[5.0, 6.0], None]
    stats = fg.statistics()
    assert stats is not None and set(stats.features) == {"k", "when", "vec", "n"}


def test_training_dataset_of_an_as_of_query_records_the_commit(fs: cloudsdk.FeatureStore) -> None:
    fg, _ = _history(fs)
    td = fs.create_training_dataset("prices_then", fg.select_all().as_of(1), data_format="parquet")
    assert sorted(td.read()["id"].tolist()) == [1, 2, 3, 4]
    assert td.provenance["feature_groups"] == [{"name": "prices", "version": 1, "commit": 1}]


@pytest.mark.local_only
def test_tables_written_before_the_commit_column_still_travel(conn: cloudsdk.Connection) -> None:
    """A table without ``_commit`` (written by an older release): reads, changes by row diff,
    and null commit columns in SQL."""
    import pyarrow as pa
    from deltalake import write_deltalake

    fs = conn.get_feature_store()
    fg = fs.create_feature_group("old", data=pd.DataFrame({"id": [1, 2], "v": [1.0, 2.0]}), primary_key="id",
                                 statistics=False)
    write_deltalake(fg.location, pa.table({"id": [1, 2], "v": [1.0, 2.0]}), mode="overwrite",
                    schema_mode="overwrite")  # commit 1: the old layout, no _commit
    fg.insert(pd.DataFrame({"id": [2, 3], "v": [20.0, 3.0]}), mode="upsert")  # commit 2
    assert _rows(fg.read(as_of=1)) == [(1, 1.0), (2, 2.0)]
    changes = fg.read_changes(1, 2).sort_values("id")
    assert changes[["id", "v", "_change_type"]].values.tolist() == [[2, 20.0, "update"], [3, 3.0, "insert"]]
    assert changes["_commit"].isna().all()
    assert fs.sql("SELECT id, _commit FROM old_1 ORDER BY id")["_commit"].isna().all()
