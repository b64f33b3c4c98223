"""Training datasets of the object API, and their TensorFlow / PyTorch / petastorm loaders."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from cloudsdk.client.feature_group import Statistics
from cloudsdk.client.frames import from_arrow
from cloudsdk.errors import InvalidArgumentError, PermissionDeniedError

if TYPE_CHECKING:
    from cloudsdk.client.feature_store import FeatureStore


def _names(value: str | Sequence[str] | None) -> Any:
    """Feature names as given: a string stays a string (the loaders refuse it clearly)."""
    return value if value is None or isinstance(value, str) else list(value)


@dataclass(frozen=True)
class _RemoteUnit:
    path: str
    row_group: int | None
    rows: int


class _RemotePartSource:
    """A dataset on a remote server's managed storage, streamed part by part over Arrow
    Flight (the client cannot see the server's disk). It holds the connection, so it is for
    ``num_workers=0`` (and tf.data's threads); datasets on S3 are read from the bucket
    directly instead, by any number of workers."""

    def __init__(self, td: TrainingDataset, files: Sequence[str]) -> None:
        self._td = td
        self.schema = td.schema
        self._files = list(files)
        self._rows = dict(td._meta.get("file_rows") or {})

    def units(self) -> list[_RemoteUnit]:
        return [_RemoteUnit(f, None, int(self._rows.get(f, -1))) for f in self._files]

    def read(self, unit: Any, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
        store = self._td._store
        table = store._backend.read_training_dataset_part(store.project, self._td.name, self._td.version,
                                                          unit.path, columns)
        yield from table.to_batches()


class TrainingDataset:
    """A versioned, managed dataset of features (and labels) written as files."""

    def __init__(self, store: FeatureStore, meta: Mapping[str, Any]) -> None:
        self._store = store
        self._meta = dict(meta)

    name = property(lambda self: str(self._meta["name"]), doc="The dataset's name.")
    version = property(lambda self: int(self._meta["version"]), doc="The version number.")
    description = property(lambda self: str(self._meta["description"]), doc="The description.")
    data_format = property(lambda self: str(self._meta["data_format"]), doc="The file format.")
    location = property(lambda self: str(self._meta["location"]),
                        doc="Where the files are: a local directory, or an s3:// URL for an S3 sink.")
    connector = property(lambda self: str(self._meta.get("connector", "")), doc="The storage connector.")
    row_count = property(lambda self: int(self._meta["row_count"]), doc="The number of rows.")
    provenance = property(lambda self: dict(self._meta["provenance"]),
                          doc="The query and the feature groups, versions and commits it was built from.")
    seed = property(lambda self: self._meta.get("seed"), doc="The seed the splits were drawn with.")

    @property
    def features(self) -> list[dict[str, str]]:
        """The columns: name and type."""
        return list(self._meta["features"])

    @property
    def schema(self) -> pa.Schema:
        """The logical Arrow schema of the rows."""
        return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(self._meta["arrow_schema"])))

    @property
    def splits(self) -> dict[str, dict[str, Any]]:
        """``{split: {"fraction", "rows", "files"}}`` ({} without splits)."""
        return dict(self._meta.get("splits") or {})

    @property
    def files(self) -> list[str]:
        """The data files, relative to :attr:`location` (``part-r-00000.<suffix>``, or
        ``<split>/part-r-...``)."""
        return list(self._meta.get("files") or [])

    def _check_split(self, split: str | None) -> list[str]:
        if split is None:
            return self.files
        if split not in self.splits:
            have = ", ".join(self.splits) or "none (written without splits)"
            raise InvalidArgumentError(f"training dataset {self.name!r} has no split {split!r}; splits: {have}")
        return list(self.splits[split]["files"])

    def get_path(self, split: str | None = None) -> str:
        """The directory of the files (of one split): a local path or an ``s3://`` URL."""
        self._check_split(split)
        return f"{self.location}/{split}" if split else self.location

    def read(self, dataframe_type: str = "pandas", split: str | None = None) -> Any:
        """All rows (of one split), as ``dataframe_type``."""
        self._check_split(split)
        table = self._store._backend.read_training_dataset(self._store.project, self.name, self.version, split)
        return from_arrow(table, dataframe_type)

    def statistics(self) -> Statistics | None:
        """The statistics computed when the dataset was written."""
        content = self._store._backend.training_dataset_statistics(self._store.project, self.name, self.version)
        return Statistics(content) if content else None

    def compute_statistics(self, columns: Sequence[str] | None = None, *, descriptive_statistics: bool = True,
                           feature_correlation: bool = True, feature_histograms: bool = True,
                           cluster_analysis: bool = False, num_bins: int = 20, num_clusters: int = 5,
                           corr_method: str = "pearson") -> Statistics:
        """Compute and store the dataset's statistics now (they replace those of :meth:`statistics`)."""
        from cloudsdk.client.stats_options import statistics_options

        self._store._check_writable()
        options = statistics_options(
            descriptive_statistics=descriptive_statistics, feature_correlation=feature_correlation,
            feature_histograms=feature_histograms, cluster_analysis=cluster_analysis, num_bins=num_bins,
            num_clusters=num_clusters, corr_method=corr_method)
        return Statistics(self._store._backend.compute_training_dataset_statistics(
            self._store.project, self.name, self.version, columns, options))

    def plot_distributions(self, **kwargs: Any) -> Any:
        """The histograms of the dataset's statistics as a matplotlib Figure."""
        from cloudsdk.client import plots

        return plots.plot_distributions(self.statistics(), owner=f"training dataset {self.name!r}", **kwargs)

    def plot_correlations(self, **kwargs: Any) -> Any:
        """The correlation heatmap as a matplotlib Figure."""
        from cloudsdk.client import plots

        return plots.plot_correlations(self.statistics(), owner=f"training dataset {self.name!r}", **kwargs)

    def plot_clusters(self, **kwargs: Any) -> Any:
        """The clusters' 2-D projection as a matplotlib Figure."""
        from cloudsdk.client import plots

        return plots.plot_clusters(self.statistics(), owner=f"training dataset {self.name!r}", **kwargs)

    def compare_statistics(self, other: TrainingDataset) -> Any:
        """Drift from this dataset's statistics to ``other``'s (e.g. another version): a pandas
        DataFrame of per-feature deltas and PSI."""
        from cloudsdk.client import plots

        return plots.compare_statistics(self.statistics(), other.statistics(),
                                        labels=(f"v{self.version}", f"v{other.version}"))

    def tf_record_schema(self) -> dict[str, Any]:
        """The parsing spec of a tfrecords dataset: ``{feature: tf.io.FixedLenFeature | VarLenFeature}``
        (needs TensorFlow)."""
        from cloudsdk.datasets import tfrecord

        spec = self._meta.get("tf_record_schema")
        if self.data_format != "tfrecords" or not spec:
            raise InvalidArgumentError(
                f"training dataset {self.name!r} is {self.data_format}; a tf record schema exists for tfrecords only")
        return tfrecord.to_tf_feature_spec(spec)

    # --- loaders --------------------------------------------------------------------------

    def _connector(self) -> dict[str, Any]:
        store = self._store
        try:
            return store._backend.get_storage_connector(store.project, self.connector,
                                                        with_secrets=not store.read_only)
        except PermissionDeniedError:
            return store._backend.get_storage_connector(store.project, self.connector)

    def source(self, split: str | None = None) -> Any:
        """The files (of one split) as a loader source (:class:`cloudsdk.ml.source.FileSource`;
        a Flight-backed source for a remote server's managed storage)."""
        import pyarrow.fs as pafs

        from cloudsdk.ml.source import FileSource

        files = self._check_split(split)
        if self.location.startswith("s3://"):
            from cloudsdk.datasets import s3 as s3util

            fs: pafs.FileSystem = s3util.filesystem(self._connector())
            base = self.location.removeprefix("s3://")
        elif self._store.is_remote:
            return _RemotePartSource(self, files)
        else:
            fs, base = pafs.LocalFileSystem(), self.location
        return FileSource(fs, [f"{base}/{f}" for f in files], self.data_format, self.schema)

    def tf_data(self, target_name: str | None = None, feature_names: Sequence[str] | None = None, *,
                split: str | None = None, batch_size: int = 256, shuffle: bool = False,
                num_epochs: int = 1, seed: int | None = None, **options: Any) -> Any:
        """A ``tf.data.Dataset`` of ``(features, label)`` batches streamed from disk or S3
        (no tensorflow-io needed); see docs/tensorflow.md."""
        from cloudsdk.ml.tensorflow import tf_dataset

        return tf_dataset(self.source(split), target_name, _names(feature_names),
                          batch_size=batch_size, shuffle=shuffle, num_epochs=num_epochs, seed=seed, **options)

    def torch_dataset(self, target_name: str | None = None, feature_names: Sequence[str] | None = None, *,
                      split: str | None = None, **options: Any) -> Any:
        """A ``torch.utils.data.IterableDataset`` of batches, sharded across workers and ranks;
        see docs/pytorch.md."""
        from cloudsdk.ml.torch import torch_dataset

        return torch_dataset(self.source(split), target_name, _names(feature_names),
                             **options)

    def torch_dataloader(self, target_name: str | None = None, batch_size: int = 256, shuffle: bool = False,
                         num_workers: int = 0, seed: int = 0, drop_last: bool = False, *,
                         split: str | None = None, feature_names: Sequence[str] | None = None,
                         **options: Any) -> Any:
        """A ``torch.utils.data.DataLoader`` over :meth:`torch_dataset` (every row once per
        epoch across workers and ranks; a new seeded shuffle each epoch)."""
        from cloudsdk.ml.torch import torch_dataloader

        source = self.source(split)
        if isinstance(source, _RemotePartSource) and num_workers:
            raise InvalidArgumentError(
                f"training dataset {self.name!r} lives on the server's managed storage and streams over "
                "this connection, which worker processes cannot share: use num_workers=0, or write the "
                "dataset to an S3 connector (sink=...) so that workers read the bucket directly")
        return torch_dataloader(source, target_name, batch_size=batch_size, shuffle=shuffle,
                                num_workers=num_workers, seed=seed, drop_last=drop_last,
                                feature_names=_names(feature_names), **options)

    def petastorm_reader(self, split: str | None = None, *, batch: bool = True, **options: Any) -> Any:
        """A petastorm reader on the files: ``make_batch_reader`` (``batch=True``) or
        ``make_reader`` (petastorm datasets only); needs petastorm (see docs/petastorm.md)."""
        from cloudsdk.datasets import petastorm as pz

        url = self.get_path(split)
        connector = self._connector() if url.startswith("s3://") else None
        return pz.make_reader(url, batch=batch, connector=connector, **options)

    def delete(self) -> None:
        """Delete this version and its files."""
        self._store._check_writable()
        self._store._backend.delete_training_dataset(self._store.project, self.name, self.version)

    def __repr__(self) -> str:
        splits = f", splits={list(self.splits)}" if self.splits else ""
        jobs = f", jobs={[j['name'] for j in self.jobs]}" if self.jobs else ""
        return (f"TrainingDataset({self.name!r}, version={self.version}, format={self.data_format!r}, "
                f"rows={self.row_count}, features={[f['name'] for f in self.features]}{splits}{jobs}, "
                f"location={self.location!r})")

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{html.escape(f['name'])}</td><td>{html.escape(f['type'])}</td></tr>"
                       for f in self.features)
        splits = "".join(f"<li>{html.escape(n)}: {s['rows']} rows</li>" for n, s in self.splits.items())
        return (f"<div><b>Training dataset</b> <code>{html.escape(self.name)}</code> version {self.version}, "
                f"{html.escape(self.data_format)}, {self.row_count} rows at <code>{html.escape(self.location)}"
                f"</code>{f'<ul>{splits}</ul>' if splits else ''}"
                f"<table><tr><th>feature</th><th>type</th></tr>{rows}</table></div>")

    # --- the registry: metadata, tags, jobs, provenance (docs/registry.md) -------------------

    def _call(self, method: str, *args: Any, write: bool = False) -> Any:
        store = self._store
        if write:
            store._check_writable()
        return getattr(store._backend, method)(store.project, *args)

    def add_metadata(self, items: Mapping[str, str]) -> dict[str, str]:
        """Attach (or overwrite) custom metadata key/values; returns all of it."""
        from cloudsdk._names import validate_metadata

        out = dict(self._call("add_training_dataset_metadata", self.name, self.version,
                              validate_metadata(items), write=True))
        self._meta["metadata"] = out
        return out

    def get_metadata(self, keys: Sequence[str] | None = None) -> dict[str, str]:
        """The custom metadata, or only ``keys`` (unknown keys are left out)."""
        return dict(self._call("get_training_dataset_metadata", self.name, self.version, keys))

    def remove_metadata(self, keys: Sequence[str]) -> dict[str, str]:
        """Remove metadata keys; returns what is left."""
        out = dict(self._call("remove_training_dataset_metadata", self.name, self.version, keys, write=True))
        self._meta["metadata"] = out
        return out

    def add_tag(self, name: str, value: Any = None) -> dict[str, str | None]:
        """Tag this dataset (``value`` optional); returns all its tags."""
        from cloudsdk._registry import tag_value, validate_tag

        out = dict(self._call("add_tag", "training_dataset", self.name, self.version, validate_tag(name),
                              tag_value(value), write=True))
        self._meta["tags"] = out
        return out

    def get_tags(self) -> dict[str, str | None]:
        """The tags: ``{name: value or None}``."""
        return dict(self._call("get_tags", "training_dataset", self.name, self.version))

    def remove_tag(self, name: str) -> dict[str, str | None]:
        """Remove a tag (NotFoundError if there is none of that name); returns the tags left."""
        out = dict(self._call("remove_tag", "training_dataset", self.name, self.version, name, write=True))
        self._meta["tags"] = out
        return out

    @property
    def jobs(self) -> list[dict[str, str | None]]:
        """The jobs that compute this dataset: ``[{"name", "url"}]``."""
        return [dict(j) for j in self._meta.get("jobs") or []]

    def set_jobs(self, jobs: Sequence[Any] | None) -> list[dict[str, str | None]]:
        """Record the jobs that compute this dataset (names or ``{"name", "url"}`` dicts),
        replacing those recorded before."""
        from cloudsdk._registry import normalize_jobs

        out = list(self._call("set_jobs", "training_dataset", self.name, self.version, normalize_jobs(jobs),
                              write=True))
        self._meta["jobs"] = out
        return out

    def features_used(self) -> dict[str, Any]:
        """Which features trained this dataset, from its provenance: ``{"feature_groups":
        [{"name", "version", "commit", "features"}], "features": [{"name", "type",
        "featuregroup", "version", "commit"}], "query"}`` (``featuregroup`` None for a column
        no feature group gave, e.g. every column of a dataset written from a dataframe)."""
        return dict(self._call("training_dataset_features", self.name, self.version))

    def diff(self, other: TrainingDataset | str, keys: str | Sequence[str] | None = None) -> dict[str, Any]:
        """How the data changed from this dataset to ``other`` (see
        :meth:`FeatureStore.compare_training_datasets`)."""
        return self._store.compare_training_datasets(self, other, keys=keys)
