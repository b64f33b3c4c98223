"""Offline storage: one Delta Lake table per feature group; each insert is one commit."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from cloudsdk.errors import StorageError

WriteMode = Literal["append", "overwrite", "upsert"]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class OfflineTable:
    """A feature group's Delta table at ``path``."""

    def __init__(self, path: str | Path, storage_options: dict[str, str] | None = None) -> None:
        self.path = str(path)
        self.storage_options = storage_options

    def _open(self, version: int | None = None) -> DeltaTable:
        try:
            return DeltaTable(self.path, version=version, storage_options=self.storage_options)
        except TableNotFoundError as exc:
            raise StorageError(f"the offline table at {self.path} is missing") from exc
        except DeltaError as exc:
            raise StorageError(f"cannot open the offline table: {exc}") from exc

    def create(self, schema: pa.Schema, partition_by: Sequence[str], data: pa.Table | None = None) -> int:
        """Create the table, with ``data`` as its first commit (version 0)."""
        try:
            write_deltalake(
                self.path,
                data if data is not None else schema.empty_table(),
                mode="error",
                partition_by=list(partition_by) or None,
                storage_options=self.storage_options,
            )
        except DeltaError as exc:
            raise StorageError(f"cannot create the offline table: {exc}") from exc
        return 0

    def write(
        self,
        data: pa.Table,
        mode: WriteMode,
        primary_key: Sequence[str],
        partition_by: Sequence[str],
    ) -> dict[str, Any]:
        """Write ``data`` as one atomic commit; returns the commit version and row counts."""
        try:
            if mode == "upsert":
                dt = self._open()
                predicate = " AND ".join(f"t.{_quote(k)} = s.{_quote(k)}" for k in primary_key)
                metrics = (
                    dt.merge(data, predicate=predicate, source_alias="s", target_alias="t")
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .execute()
                )
                return {
                    "version": dt.version(),
                    "rows_inserted": int(metrics.get("num_target_rows_inserted", 0)),
                    "rows_updated": int(metrics.get("num_target_rows_updated", 0)),
                    "rows_deleted": int(metrics.get("num_target_rows_deleted", 0)),
                }
            before = self.count() if mode == "overwrite" else 0
            write_deltalake(
                self.path,
                data,
                mode=mode,
                partition_by=list(partition_by) or None,
                storage_options=self.storage_options,
            )
            dt = self._open()
            return {
                "version": dt.version(),
                "rows_inserted": data.num_rows,
                "rows_updated": 0,
                "rows_deleted": before,
            }
        except CommitFailedError as exc:
            raise StorageError(
                f"a concurrent write changed the feature group; retry the insert ({exc})"
            ) from exc
        except DeltaError as exc:
            raise StorageError(f"the offline write failed: {exc}") from exc

    def _filesystem(self) -> pafs.FileSystem | None:
        """pyarrow's own filesystem rooted at the table, for local tables.

        deltalake's default filesystem handler, scanned by pyarrow's thread pool, aborts the
        process at interpreter exit ("terminate called without an active exception") in
        most runs; pyarrow's native LocalFileSystem does not.
        """
        if "://" in self.path and not self.path.startswith("file://"):
            return None
        root = self.path[len("file://"):] if self.path.startswith("file://") else self.path
        return pafs.SubTreeFileSystem(str(Path(root).resolve()), pafs.LocalFileSystem())

    def dataset(self, version: int | None = None) -> pads.Dataset:
        """The table (at ``version``, default latest) as a pyarrow dataset."""
        return self._open(version).to_pyarrow_dataset(filesystem=self._filesystem())

    def snapshot(self) -> tuple[pads.Dataset, int]:
        """The latest snapshot as a pyarrow dataset, with its commit version (read together)."""
        dt = self._open()
        return dt.to_pyarrow_dataset(filesystem=self._filesystem()), int(dt.version())

    def version(self) -> int:
        """The latest commit version."""
        return int(self._open().version())

    def count(self) -> int:
        """Number of rows in the latest snapshot."""
        return int(self.dataset().count_rows())

    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Commit history, newest first."""
        return list(self._open().history(limit))

    def delete(self) -> None:
        """Remove the table's files."""
        shutil.rmtree(self.path, ignore_errors=True)
