"""Training datasets: materialise features to files under the project's managed location.

This release writes ``parquet``, ``csv`` and ``tsv`` (files named ``part-r-NNNNN.<ext>``
so the Hadoop-style glob ``<dir>/part-r-*`` finds them). Writes go to a temporary
directory that is renamed into place only when complete: a failed write leaves nothing.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa

from cloudsdk._names import validate_dataset_name, validate_version
from cloudsdk.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    SchemaMismatchError,
    TrainingDatasetNotFoundError,
    UnsupportedError,
)
from cloudsdk.store import catalog as C
from cloudsdk.store import schema, statistics

FORMATS = {"parquet": "parquet", "csv": "csv", "tsv": "tsv"}
LATER_FORMATS = ("tfrecords", "tfrecord", "petastorm", "avro", "orc", "npy", "hdf5")
ROWS_PER_FILE = 1_000_000


def _write_files(table: pa.Table, directory: Path, data_format: str) -> list[str]:
    directory.mkdir(parents=True)
    files = []
    n_parts = max(1, -(-table.num_rows // ROWS_PER_FILE))
    for i in range(n_parts):
        part = table.slice(i * ROWS_PER_FILE, ROWS_PER_FILE)
        path = directory / f"part-r-{i:05d}.{FORMATS[data_format]}"
        if data_format == "parquet":
            pq.write_table(part, path)
        else:
            for f in part.schema:
                if pa.types.is_list(f.type) or pa.types.is_fixed_size_list(f.type) or pa.types.is_struct(f.type):
                    raise SchemaMismatchError(
                        f"{data_format} cannot hold array feature {f.name!r}; "
                        "use data_format='parquet' (or tfrecords/petastorm when available)"
                    )
            delimiter = "\t" if data_format == "tsv" else ","
            pacsv.write_csv(part, path, pacsv.WriteOptions(delimiter=delimiter))
        files.append(path.name)
    (directory / "_SUCCESS").touch()
    return files


class TrainingDatasetsMixin:
    """Training-dataset operations of :class:`FeatureStoreService`."""

    root: Path
    catalog: C.Catalog

    def _fs_id(self, project: str) -> int:
        raise NotImplementedError

    def create_training_dataset(
        self,
        project: str,
        name: str,
        version: int | None,
        data: pa.Table,
        *,
        data_format: str = "parquet",
        description: str = "",
        write_mode: str = "overwrite",
        provenance: Mapping[str, Any] | None = None,
        compute_statistics: bool = True,
    ) -> dict[str, Any]:
        """Write ``data`` as training dataset ``name`` version ``version``."""
        validate_dataset_name(name)
        fmt = data_format.lower()
        if fmt not in FORMATS:
            if fmt in LATER_FORMATS:
                raise UnsupportedError(
                    f"data_format {data_format!r} is not available in this release; "
                    f"use one of {', '.join(FORMATS)}"
                )
            raise InvalidArgumentError(f"unknown data_format {data_format!r}; use one of {', '.join(FORMATS)}")
        if write_mode not in ("overwrite", "error"):
            raise InvalidArgumentError("write_mode must be 'overwrite' or 'error'")
        fs_id = self._fs_id(project)
        clash = sorted({r.name for r in self._td_rows(project) if r.name.lower() == name.lower() and r.name != name})
        if clash:
            raise AlreadyExistsError(
                f"training dataset {clash[0]!r} exists; names that differ only in case are not allowed",
                training_dataset=name,
            )
        existing = self._td_rows(project, name)
        if version is None:
            version = (existing[-1].version if existing else 0) + 1
        validate_version(version, "training dataset version")
        old = [r for r in existing if r.version == version]
        if old and write_mode == "error":
            raise AlreadyExistsError(f"training dataset {name!r} version {version} already exists")
        schema.check_columns(data.schema)
        base = self.root / "projects" / project / "training_datasets"
        location = base / f"{name}_{version}"
        tmp = base / f".tmp-{name}_{version}-{uuid.uuid4().hex}"
        try:
            _write_files(data, tmp, fmt)
            stats = statistics.describe(data, data.schema) if compute_statistics else None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        trash = None
        if location.exists():
            trash = base / f".old-{uuid.uuid4().hex}"
            location.rename(trash)
        tmp.rename(location)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        with self.catalog.begin() as conn:
            if old:
                conn.execute(C.training_datasets.delete().where(C.training_datasets.c.id == old[0].id))
            td_id = conn.execute(C.training_datasets.insert().values(
                fs_id=fs_id, name=name, version=version, description=description or "",
                data_format=fmt, connector=f"{project}_training_datasets", location=str(location),
                arrow_schema=schema.serialize_schema(data.schema),
                provenance=C.dumps(dict(provenance or {})), custom_metadata="{}",
                row_count=data.num_rows, created=C.now(),
            )).inserted_primary_key[0]  # type: ignore[index]
            if stats is not None:
                conn.execute(C.statistics.insert().values(td_id=td_id, computed_at=C.now(), content=C.dumps(stats, sort_keys=False)))
        return self.describe_training_dataset(project, name, version)

    def _td_rows(self, project: str, name: str | None = None) -> list[Any]:
        fs_id = self._fs_id(project)
        query = sa.select(C.training_datasets).where(C.training_datasets.c.fs_id == fs_id)
        if name is not None:
            query = query.where(C.training_datasets.c.name == name)
        with self.catalog.read() as conn:
            return list(conn.execute(query.order_by(C.training_datasets.c.name, C.training_datasets.c.version)))

    def _td_row(self, project: str, name: str, version: int | None) -> Any:
        rows = self._td_rows(project, name)
        if version is not None:
            rows = [r for r in rows if r.version == version]
        if not rows:
            raise TrainingDatasetNotFoundError(
                f"no training dataset {name!r}" + (f" version {version}" if version else "")
                + f" in project {project!r}", training_dataset=name)
        return rows[-1]

    def describe_training_dataset(self, project: str, name: str,
                                  version: int | None = None) -> dict[str, Any]:
        """A training dataset's metadata (latest version when ``version`` is None)."""
        r = self._td_row(project, name, version)
        logical = schema.deserialize_schema(r.arrow_schema)
        return {
            "name": r.name, "version": r.version, "description": r.description,
            "data_format": r.data_format, "connector": r.connector, "location": r.location,
            "features": [{"name": f.name, "type": schema.feature_type(f.type)} for f in logical],
            "arrow_schema": r.arrow_schema, "provenance": json.loads(r.provenance),
            "row_count": r.row_count, "created": r.created.isoformat(),
        }

    def list_training_datasets(self, project: str) -> list[dict[str, Any]]:
        """Metadata of every training dataset of the project."""
        return [self.describe_training_dataset(project, r.name, r.version) for r in self._td_rows(project)]

    def read_training_dataset(self, project: str, name: str,
                              version: int | None = None) -> pa.Table:
        """A training dataset's rows."""
        r = self._td_row(project, name, version)
        logical = schema.deserialize_schema(r.arrow_schema)
        files = sorted(Path(r.location).glob("part-r-*"))
        if r.data_format == "parquet":
            tables = [pq.read_table(f) for f in files]
        else:
            delimiter = "\t" if r.data_format == "tsv" else ","
            tables = [pacsv.read_csv(f, parse_options=pacsv.ParseOptions(delimiter=delimiter),
                                     convert_options=pacsv.ConvertOptions(
                                         column_types=logical, strings_can_be_null=True,
                                         quoted_strings_can_be_null=False)) for f in files]
        table = pa.concat_tables(tables) if tables else logical.empty_table()
        return table.cast(logical)

    def training_dataset_statistics(self, project: str, name: str,
                                    version: int | None = None) -> dict[str, Any] | None:
        """The statistics stored with a training dataset."""
        r = self._td_row(project, name, version)
        with self.catalog.read() as conn:
            found = conn.execute(sa.select(C.statistics.c.content).where(C.statistics.c.td_id == r.id)
                                 .order_by(C.statistics.c.id.desc()).limit(1)).scalar()
        return json.loads(found) if found else None

    def delete_training_dataset(self, project: str, name: str, version: int) -> None:
        """Delete a training dataset version and its files."""
        r = self._td_row(project, name, version)
        with self.catalog.begin() as conn:
            conn.execute(C.training_datasets.delete().where(C.training_datasets.c.id == r.id))
        shutil.rmtree(r.location, ignore_errors=True)

    def list_storage_connectors(self, project: str) -> list[dict[str, Any]]:
        """The project's storage connectors (the defaults in this release)."""
        self._fs_id(project)
        return [
            {"name": f"{project}_training_datasets", "type": "managed",
             "description": "the project's managed training-dataset location",
             "path": str(self.root / "projects" / project / "training_datasets")},
            {"name": f"{project}_featurestore", "type": "offline",
             "description": "the project's offline feature store (Delta tables)",
             "path": str(self.root / "projects" / project / "featurestore")},
        ]
