"""Training datasets and storage connectors of the store.

A training dataset is files plus a catalog row. Files are written by
:mod:`cloudsdk.datasets.writer` (formats in :mod:`cloudsdk.datasets.formats`) to the
project's managed location (``<root>/projects/<p>/training_datasets/<name>_<version>``) or to
an S3 storage connector's bucket (``s3://bucket/<path>/<name>_<version>``); the catalog row,
with the layout (files, splits, seed), the logical schema and the provenance, is written
only after every file is in place, so a failed write registers nothing.

Storage connectors: the project's defaults (managed training datasets, offline store) and
user-defined S3 connectors, whose credentials are sealed in the catalog with the data
directory's key (:mod:`cloudsdk.store.secrets`) and only handed out to project members.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import sqlalchemy as sa

from cloudsdk._names import validate_dataset_name, validate_name, validate_version
from cloudsdk.datasets import formats
from cloudsdk.datasets import s3 as s3util
from cloudsdk.datasets.writer import (
    ROWS_PER_FILE,
    LocalTarget,
    S3Target,
    check_splits,
    write_dataset,
)
from cloudsdk.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    PermissionDeniedError,
    StorageConnectorNotFoundError,
    StorageError,
    TrainingDatasetNotFoundError,
)
from cloudsdk.store import catalog as C
from cloudsdk.store import ondemand, schema, stats_extra
from cloudsdk.store.secrets import SecretBox

WRITE_MODES = ("overwrite", "error")
_PATH_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_S3_SECRET_FIELDS = ("access_key", "secret_key", "session_token")
_S3_FIELDS = ("bucket", "path", "region", "endpoint_url", "server_side_encryption", "kms_key_id")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _check_subpath(path: str | None) -> str | None:
    """A relative path inside a connector: segments of letters, digits, ``_ . -``; no ``..``."""
    if path is None or path == "":
        return None
    if not isinstance(path, str):
        raise InvalidArgumentError(f"path must be a string, got {type(path).__name__}")
    parts = path.strip("/").split("/")
    for part in parts:
        if not _PATH_PART.match(part) or part in (".", "..") or part.startswith("."):
            raise InvalidArgumentError(
                f"path {path!r}: each segment must start with a letter or digit and hold only "
                "letters, digits, '_', '.', '-' (no '..', no absolute paths)")
    return "/".join(parts)


def _full_statistics(data: pa.Table, logical: pa.Schema) -> dict[str, Any]:
    """A new dataset's statistics with the default configuration (descriptive, histograms,
    correlation), as feature groups get on insert."""
    return stats_extra.compute(data, logical, None, all_columns=logical.names, empty_ok=True, strict=False)


def _mask(value: str | None) -> str | None:
    if not value:
        return None
    return value[:4] + "…" if len(value) > 8 else "…"


class TrainingDatasetsMixin:
    """Training-dataset and storage-connector operations of :class:`FeatureStoreService`."""

    root: Path
    catalog: C.Catalog
    _registry_fields: Any  # RegistryMixin._registry_fields (store/registry.py): tags and jobs

    def _fs_id(self, project: str) -> int:
        raise NotImplementedError

    def run_query_pinned(self, project: str, spec: Mapping[str, Any]) -> tuple[pa.Table, list[dict[str, Any]]]:
        raise NotImplementedError

    @property
    def _secrets(self) -> SecretBox:
        box = getattr(self, "_secret_box", None)
        if box is None:
            box = self._secret_box = SecretBox(self.root)
        return box

    # --- storage connectors ---------------------------------------------------------------

    def _managed_dir(self, project: str) -> Path:
        return self.root / "projects" / project / "training_datasets"

    def _default_connectors(self, project: str) -> list[dict[str, Any]]:
        return [
            {"name": f"{project}_training_datasets", "type": "managed",
             "description": "the project's managed training-dataset location",
             "path": str(self._managed_dir(project))},
            {"name": f"{project}_featurestore", "type": "offline",
             "description": "the project's offline feature store (Delta tables)",
             "path": str(self.root / "projects" / project / "featurestore")},
        ]

    def create_s3_connector(
        self,
        project: str,
        name: str,
        *,
        bucket: str,
        path: str = "",
        region: str | None = None,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        server_side_encryption: str | None = None,
        kms_key_id: str | None = None,
        description: str = "",
        exist_ok: bool = False,
    ) -> dict[str, Any]:
        """Register an S3 storage connector: where external training datasets go.

        Without ``access_key``/``secret_key`` readers and writers use the default AWS
        credential chain (an instance or notebook role). Secrets are stored encrypted.
        """
        validate_name(name, "storage connector")
        fs_id = self._fs_id(project)
        if name in {c["name"] for c in self._default_connectors(project)}:
            raise AlreadyExistsError(f"{name!r} is a default storage connector of project {project!r}")
        if not isinstance(bucket, str) or not _BUCKET_RE.match(bucket):
            raise InvalidArgumentError(f"bucket {bucket!r} is not a valid S3 bucket name")
        if bool(access_key) != bool(secret_key):
            raise InvalidArgumentError("give both access_key and secret_key, or neither (default credential chain)")
        if server_side_encryption not in (None, "", *s3util.SSE_VALUES):
            raise InvalidArgumentError(
                f"server_side_encryption must be one of {', '.join(s3util.SSE_VALUES)} or None, "
                f"got {server_side_encryption!r}")
        config = {"bucket": bucket, "path": _check_subpath(path) or "", "region": region or None,
                  "endpoint_url": endpoint_url or None,
                  "server_side_encryption": server_side_encryption or None, "kms_key_id": kms_key_id or None}
        s3util.filesystem(config)  # validates endpoint_url
        secrets = {k: v for k, v in (("access_key", access_key), ("secret_key", secret_key),
                                      ("session_token", session_token)) if v}
        return self._insert_connector(project, fs_id, name, "s3", description, config, secrets, exist_ok=exist_ok)

    def _insert_connector(self, project: str, fs_id: int, name: str, kind: str, description: str,
                          config: Mapping[str, Any], secrets: Mapping[str, Any], *, exist_ok: bool) -> dict[str, Any]:
        """Add a connector row (and its sealed secrets, if any); the connector's public view."""
        with self.catalog.begin() as conn:
            found = conn.execute(sa.select(C.storage_connectors.c.id).where(
                C.storage_connectors.c.fs_id == fs_id, C.storage_connectors.c.name == name)).first()
            if found is not None:
                if exist_ok:
                    return self.get_storage_connector(project, name)
                raise AlreadyExistsError(f"storage connector {name!r} already exists in project {project!r}")
            cid = conn.execute(C.storage_connectors.insert().values(
                fs_id=fs_id, name=name, type=kind, description=description or "",
                config=C.dumps(dict(config)))).inserted_primary_key[0]  # type: ignore[index]
            if secrets:
                conn.execute(C.connector_secrets.insert().values(
                    connector_id=cid, ciphertext=self._secrets.seal(dict(secrets))))
        return self.get_storage_connector(project, name)

    def _connector_row(self, project: str, name: str) -> Any:
        fs_id = self._fs_id(project)
        with self.catalog.read() as conn:
            row = conn.execute(
                sa.select(C.storage_connectors, C.connector_secrets.c.ciphertext)
                .outerjoin(C.connector_secrets, C.connector_secrets.c.connector_id == C.storage_connectors.c.id)
                .where(C.storage_connectors.c.fs_id == fs_id, C.storage_connectors.c.name == name)).first()
        if row is None:
            known = [c["name"] for c in self.list_storage_connectors(project)]
            raise StorageConnectorNotFoundError(
                f"no storage connector {name!r} in project {project!r}; known: {', '.join(known)}",
                storage_connector=name)
        return row

    def _connector_view(self, row: Any, with_secrets: bool) -> dict[str, Any]:
        config = json.loads(row.config)
        secrets = self._secrets.open(row.ciphertext) if row.ciphertext else {}
        out = {"name": row.name, "type": row.type, "description": row.description, **config}
        if row.type == "jdbc":  # a password, shown only with_secrets (data owners)
            return ondemand.connector_view(out, secrets, with_secrets)
        if with_secrets:
            out.update({k: secrets.get(k) for k in _S3_SECRET_FIELDS})
        else:
            out["access_key"] = _mask(secrets.get("access_key"))
            out["credentials"] = "access key pair" if secrets else "default AWS credential chain"
        return out

    def get_storage_connector(self, project: str, name: str, *, with_secrets: bool = False) -> dict[str, Any]:
        """A storage connector's settings. Secrets (the key pair) only with ``with_secrets``:
        the service hands them only to members of the project itself."""
        for default in self._default_connectors(project):
            if default["name"] == name:
                return dict(default)
        return self._connector_view(self._connector_row(project, name), with_secrets)

    def list_storage_connectors(self, project: str) -> list[dict[str, Any]]:
        """The project's storage connectors: the defaults, then user-defined ones (no secrets)."""
        fs_id = self._fs_id(project)
        with self.catalog.read() as conn:
            rows = list(conn.execute(
                sa.select(C.storage_connectors, C.connector_secrets.c.ciphertext)
                .outerjoin(C.connector_secrets, C.connector_secrets.c.connector_id == C.storage_connectors.c.id)
                .where(C.storage_connectors.c.fs_id == fs_id).order_by(C.storage_connectors.c.name)))
        return [*self._default_connectors(project), *(self._connector_view(r, False) for r in rows)]

    def delete_storage_connector(self, project: str, name: str) -> None:
        """Remove a user-defined connector (datasets already written keep their files)."""
        if name in {c["name"] for c in self._default_connectors(project)}:
            raise InvalidArgumentError(f"{name!r} is a default storage connector of project {project!r}; "
                                       "default connectors cannot be deleted")
        row = self._connector_row(project, name)
        with self.catalog.begin() as conn:
            used = conn.execute(sa.select(sa.func.count()).select_from(C.training_datasets).where(
                C.training_datasets.c.fs_id == row.fs_id, C.training_datasets.c.connector == name)).scalar()
            if used:
                raise InvalidArgumentError(
                    f"storage connector {name!r} holds {used} training dataset version(s); delete them first")
            readers = conn.execute(sa.select(sa.func.count()).select_from(C.on_demand_sources).where(
                C.on_demand_sources.c.connector == name, C.on_demand_sources.c.fg_id.in_(
                    sa.select(C.feature_groups.c.id).where(C.feature_groups.c.fs_id == row.fs_id)))).scalar()
            if readers:
                raise InvalidArgumentError(
                    f"storage connector {name!r} is read by {readers} on-demand feature group version(s); "
                    "delete them first")
            conn.execute(C.connector_secrets.delete().where(C.connector_secrets.c.connector_id == row.id))
            conn.execute(C.storage_connectors.delete().where(C.storage_connectors.c.id == row.id))

    # --- creating -------------------------------------------------------------------------

    def _td_rows(self, project: str, name: str | None = None) -> list[Any]:
        fs_id = self._fs_id(project)
        query = sa.select(C.training_datasets, C.training_dataset_layouts.c.content.label("layout")).outerjoin(
            C.training_dataset_layouts, C.training_dataset_layouts.c.td_id == C.training_datasets.c.id
        ).where(C.training_datasets.c.fs_id == fs_id)
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

    def prepare_training_dataset(self, project: str, name: str, version: int | None, *,
                                 data_format: str = "tfrecords", sink: str | None = None, path: str | None = None,
                                 write_mode: str = "overwrite") -> dict[str, Any]:
        """Check a new dataset's name, format, version and sink before anything is written.

        Returns ``{"version", "data_format", "connector", "location"}``; for an S3 sink also
        the connector's settings with secrets (``"s3"``) so that the caller can write the
        files itself (the client writes a DataFrame straight to the bucket).
        """
        validate_dataset_name(name)
        fmt = formats.canonical_format(data_format)
        if write_mode not in WRITE_MODES:
            raise InvalidArgumentError(f"write_mode must be one of {', '.join(WRITE_MODES)}, got {write_mode!r}")
        clash = sorted({r.name for r in self._td_rows(project) if r.name.lower() == name.lower() and r.name != name})
        if clash:
            raise AlreadyExistsError(
                f"training dataset {clash[0]!r} exists; names that differ only in case are not allowed",
                training_dataset=name)
        existing = self._td_rows(project, name)
        if version is None:
            version = (existing[-1].version if existing else 0) + 1
        validate_version(version, "training dataset version")
        if write_mode == "error" and any(r.version == version for r in existing):
            raise AlreadyExistsError(
                f"training dataset {name!r} version {version} already exists (write_mode='error'); "
                "pass write_mode='overwrite' or another version", training_dataset=name)
        sub = _check_subpath(path)
        dirname = f"{sub}/{name}_{version}" if sub else f"{name}_{version}"
        out: dict[str, Any] = {"name": name, "version": version, "data_format": fmt}
        if sink is None or sink == f"{project}_training_datasets":
            out.update(connector=f"{project}_training_datasets",
                       location=str(self._managed_dir(project) / dirname))
            return out
        if sink == f"{project}_featurestore":
            raise InvalidArgumentError(f"{sink!r} holds the offline feature groups; it cannot be a training-dataset sink")
        row = self._connector_row(project, sink)
        if row.type != "s3":
            raise InvalidArgumentError(f"storage connector {sink!r} is a {row.type} connector; "
                                       "training datasets go to the managed location or an S3 connector")
        conn = self._connector_view(row, with_secrets=True)
        out.update(connector=sink, location=s3util.dataset_url(conn, dirname), s3=conn)
        return out

    def create_training_dataset(
        self,
        project: str,
        name: str,
        version: int | None,
        data: pa.Table,
        *,
        data_format: str = "tfrecords",
        description: str = "",
        write_mode: str = "overwrite",
        provenance: Mapping[str, Any] | None = None,
        compute_statistics: bool = True,
        sink: str | None = None,
        path: str | None = None,
        splits: Mapping[str, float] | None = None,
        seed: int | None = None,
        rows_per_file: int | None = None,
    ) -> dict[str, Any]:
        """Write ``data`` as training dataset ``name`` (``version`` None: the next one) and
        register it; returns its metadata (see :meth:`describe_training_dataset`)."""
        plan = self.prepare_training_dataset(project, name, version, data_format=data_format, sink=sink,
                                             path=path, write_mode=write_mode)
        schema.check_columns(data.schema)
        check_splits(splits)
        if rows_per_file is not None and (not isinstance(rows_per_file, int) or rows_per_file < 1):
            raise InvalidArgumentError(f"rows_per_file must be a positive integer, got {rows_per_file!r}")
        target = S3Target(plan["s3"], plan["location"]) if "s3" in plan else LocalTarget(plan["location"])
        layout = write_dataset(data, data.schema, plan["data_format"], target, splits=splits, seed=seed,
                               rows_per_file=rows_per_file or ROWS_PER_FILE)
        stats = _full_statistics(data, data.schema) if compute_statistics else None
        return self._register(project, plan, data.schema, layout, description=description,
                              provenance=provenance, stats=stats)

    def create_training_dataset_from_query(self, project: str, name: str, version: int | None,
                                           spec: Mapping[str, Any], **options: Any) -> dict[str, Any]:
        """Materialise a query (a spec of the planner) as a training dataset, recording which
        feature groups, versions and offline commits it read."""
        table, groups = self.run_query_pinned(project, spec)
        provenance = {"query": dict(spec), "feature_groups": groups}
        return self.create_training_dataset(project, name, version, table, provenance=provenance, **options)

    def register_training_dataset(
        self,
        project: str,
        name: str,
        version: int,
        *,
        data_format: str,
        sink: str,
        path: str | None,
        arrow_schema: str,
        layout: Mapping[str, Any],
        description: str = "",
        provenance: Mapping[str, Any] | None = None,
        compute_statistics: bool = True,
        write_mode: str = "overwrite",
    ) -> dict[str, Any]:
        """Register a dataset that a client wrote to an S3 sink itself. The store checks that
        ``_SUCCESS`` and every listed file are there, and computes statistics by reading it."""
        plan = self.prepare_training_dataset(project, name, version, data_format=data_format, sink=sink,
                                             path=path, write_mode=write_mode)
        if "s3" not in plan:
            raise InvalidArgumentError("only datasets on an S3 sink are registered after the fact")
        logical = schema.deserialize_schema(arrow_schema)
        files = [str(f) for f in layout.get("files", [])]
        if not files or any(_check_subpath(f) != f for f in files):
            raise InvalidArgumentError("the layout must list the dataset's files by relative path")
        fs = s3util.filesystem(plan["s3"])
        base = plan["location"].removeprefix("s3://")
        try:
            infos = fs.get_file_info([f"{base}/{f}" for f in [*files, "_SUCCESS"]])
        except OSError as exc:
            raise s3util.translate(exc, plan["s3"], f"check {plan['location']}") from exc
        missing = [i.path for i in infos if i.type != pafs.FileType.File]
        if missing:
            raise InvalidArgumentError(f"the dataset is incomplete: missing {missing[:3]} in {plan['location']}")
        stats = None
        if compute_statistics:
            table = self._read_files(fs, base, files, plan["data_format"], logical)
            stats = _full_statistics(table, logical)
        clean = {"rows": int(layout.get("rows", 0)), "files": files, "splits": layout.get("splits"),
                 "seed": layout.get("seed"), "file_rows": dict(layout.get("file_rows") or {})}
        return self._register(project, plan, logical, clean, description=description,
                              provenance=provenance, stats=stats)

    def _register(self, project: str, plan: Mapping[str, Any], logical: pa.Schema, layout: dict[str, Any], *,
                  description: str, provenance: Mapping[str, Any] | None,
                  stats: dict[str, Any] | None) -> dict[str, Any]:
        name, version, fmt = plan["name"], plan["version"], plan["data_format"]
        if fmt == "tfrecords":
            from cloudsdk.datasets import tfrecord

            layout = {**layout, "tf_record_schema": tfrecord.tf_record_schema(logical)}
        fs_id = self._fs_id(project)
        with self.catalog.begin() as conn:
            old = conn.execute(sa.select(C.training_datasets.c.id).where(
                C.training_datasets.c.fs_id == fs_id, C.training_datasets.c.name == name,
                C.training_datasets.c.version == version)).first()
            if old is not None:
                conn.execute(C.training_datasets.delete().where(C.training_datasets.c.id == old.id))
            td_id = conn.execute(C.training_datasets.insert().values(
                fs_id=fs_id, name=name, version=version, description=description or "",
                data_format=fmt, connector=plan["connector"], location=plan["location"],
                arrow_schema=schema.serialize_schema(logical),
                provenance=C.dumps(dict(provenance or {})), custom_metadata="{}",
                row_count=int(layout["rows"]), created=C.now(),
            )).inserted_primary_key[0]  # type: ignore[index]
            conn.execute(C.training_dataset_layouts.insert().values(td_id=td_id, content=C.dumps(layout)))
            if stats is not None:
                conn.execute(C.statistics.insert().values(td_id=td_id, computed_at=C.now(),
                                                          content=C.dumps(stats, sort_keys=False)))
        return self.describe_training_dataset(project, name, version)

    # --- reading ----------------------------------------------------------------------------

    def describe_training_dataset(self, project: str, name: str,
                                  version: int | None = None) -> dict[str, Any]:
        """A training dataset's metadata (latest version when ``version`` is None)."""
        r = self._td_row(project, name, version)
        logical = schema.deserialize_schema(r.arrow_schema)
        layout = json.loads(r.layout) if r.layout else {}
        storage = "s3" if r.location.startswith("s3://") else "managed"
        return {
            "name": r.name, "version": r.version, "description": r.description,
            "data_format": r.data_format, "connector": r.connector, "location": r.location,
            "storage": storage,
            "features": [{"name": f.name, "type": schema.feature_type(f.type)} for f in logical],
            "arrow_schema": r.arrow_schema, "provenance": json.loads(r.provenance),
            "row_count": r.row_count, "created": r.created.isoformat(),
            "files": layout.get("files", []), "splits": layout.get("splits"), "seed": layout.get("seed"),
            "file_rows": layout.get("file_rows", {}),
            "tf_record_schema": layout.get("tf_record_schema"),
            "metadata": json.loads(r.custom_metadata or "{}"),
            **self._registry_fields("training_dataset", r.id),  # tags, jobs (store/registry.py)
        }

    def list_training_datasets(self, project: str) -> list[dict[str, Any]]:
        """Metadata of every training dataset of the project."""
        return [self.describe_training_dataset(project, r.name, r.version) for r in self._td_rows(project)]

    def _dataset_filesystem(self, project: str, r: Any) -> tuple[pafs.FileSystem, str]:
        if r.location.startswith("s3://"):
            conn = self._connector_view(self._connector_row(project, r.connector), with_secrets=True)
            return s3util.filesystem(conn), r.location.removeprefix("s3://")
        return pafs.LocalFileSystem(), r.location

    @staticmethod
    def _files_of(r: Any, split: str | None) -> list[str]:
        layout = json.loads(r.layout) if r.layout else {}
        files = list(layout.get("files", []))
        if split is None:
            return files
        splits = layout.get("splits") or {}
        if split not in splits:
            have = ", ".join(splits) if splits else "none (the dataset was written without splits)"
            raise InvalidArgumentError(f"training dataset {r.name!r} has no split {split!r}; splits: {have}")
        return list(splits[split]["files"])

    @staticmethod
    def _read_files(fs: pafs.FileSystem, base: str, files: Sequence[str], fmt: str,
                    logical: pa.Schema, columns: Sequence[str] | None = None) -> pa.Table:
        batches: list[pa.RecordBatch] = []
        for f in files:
            batches.extend(formats.iter_file_batches(fs, f"{base}/{f}", fmt, logical,
                                                     columns=list(columns) if columns else None))
        target = pa.schema([logical.field(c) for c in columns]) if columns else logical
        return pa.Table.from_batches(batches, schema=target) if batches else target.empty_table()

    def read_training_dataset(self, project: str, name: str, version: int | None = None,
                              split: str | None = None) -> pa.Table:
        """A training dataset's rows (of one split, or all), in its logical schema."""
        r = self._td_row(project, name, version)
        logical = schema.deserialize_schema(r.arrow_schema)
        fs, base = self._dataset_filesystem(project, r)
        try:
            return self._read_files(fs, base, self._files_of(r, split), r.data_format, logical)
        except OSError as exc:
            raise StorageError(f"cannot read training dataset {name!r} version {r.version}: {exc}") from exc

    def read_training_dataset_part(self, project: str, name: str, version: int, file: str,
                                   columns: Sequence[str] | None = None) -> pa.Table:
        """One part file of a training dataset (the unit remote loaders stream)."""
        r = self._td_row(project, name, version)
        if file not in self._files_of(r, None):
            raise InvalidArgumentError(f"training dataset {name!r} version {r.version} has no file {file!r}")
        logical = schema.deserialize_schema(r.arrow_schema)
        fs, base = self._dataset_filesystem(project, r)
        return self._read_files(fs, base, [file], r.data_format, logical, columns)

    def iter_training_dataset(self, project: str, name: str, version: int | None = None,
                              split: str | None = None) -> Iterator[pa.RecordBatch]:
        """The rows as a stream of record batches."""
        r = self._td_row(project, name, version)
        logical = schema.deserialize_schema(r.arrow_schema)
        fs, base = self._dataset_filesystem(project, r)
        for f in self._files_of(r, split):
            yield from formats.iter_file_batches(fs, f"{base}/{f}", r.data_format, logical)

    def training_dataset_statistics(self, project: str, name: str,
                                    version: int | None = None) -> dict[str, Any] | None:
        """The statistics stored with a training dataset."""
        r = self._td_row(project, name, version)
        with self.catalog.read() as conn:
            found = conn.execute(sa.select(C.statistics.c.content).where(C.statistics.c.td_id == r.id)
                                 .order_by(C.statistics.c.id.desc()).limit(1)).scalar()
        return json.loads(found) if found else None

    def delete_training_dataset(self, project: str, name: str, version: int) -> None:
        """Delete a training dataset version and its files (on S3 too)."""
        r = self._td_row(project, name, version)
        with self.catalog.begin() as conn:
            conn.execute(C.training_datasets.delete().where(C.training_datasets.c.id == r.id))
        if r.location.startswith("s3://"):
            conn_view = self._connector_view(self._connector_row(project, r.connector), with_secrets=True)
            with contextlib.suppress(StorageError, PermissionDeniedError):  # the metadata is gone
                s3util.delete_prefix(conn_view, r.location)
        else:
            import shutil

            shutil.rmtree(r.location, ignore_errors=True)
