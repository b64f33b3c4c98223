"""Training datasets of the object API."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cloudsdk.client.feature_group import Statistics
from cloudsdk.client.frames import from_arrow

if TYPE_CHECKING:
    from cloudsdk.client.feature_store import FeatureStore


class TrainingDataset:
    """A versioned, managed dataset of features (and labels) written as files."""

    def __init__(self, store: FeatureStore, meta: Mapping[str, Any]) -> None:
        self._store = store
        self._meta = dict(meta)

    name = property(lambda self: str(self._meta["name"]), doc="The dataset's name.")
    version = property(lambda self: int(self._meta["version"]), doc="The version number.")
    description = property(lambda self: str(self._meta["description"]), doc="The description.")
    data_format = property(lambda self: str(self._meta["data_format"]), doc="The file format.")
    location = property(lambda self: str(self._meta["location"]), doc="The directory holding the files.")
    row_count = property(lambda self: int(self._meta["row_count"]), doc="The number of rows.")
    provenance = property(lambda self: dict(self._meta["provenance"]),
                          doc="The feature groups and versions it was built from.")

    @property
    def features(self) -> list[dict[str, str]]:
        """The columns: name and type."""
        return list(self._meta["features"])

    def read(self, dataframe_type: str = "pandas") -> Any:
        """All rows, as ``dataframe_type``."""
        table = self._store._backend.read_training_dataset(self._store.project, self.name, self.version)
        return from_arrow(table, dataframe_type)

    def statistics(self) -> Statistics | None:
        """The statistics computed when the dataset was written."""
        content = self._store._backend.training_dataset_statistics(self._store.project, self.name, self.version)
        return Statistics(content) if content else None

    def delete(self) -> None:
        """Delete this version and its files."""
        self._store._check_writable()
        self._store._backend.delete_training_dataset(self._store.project, self.name, self.version)

    def __repr__(self) -> str:
        return (f"TrainingDataset({self.name!r}, version={self.version}, format={self.data_format!r}, "
                f"rows={self.row_count}, features={[f['name'] for f in self.features]})")

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{html.escape(f['name'])}</td><td>{html.escape(f['type'])}</td></tr>"
                       for f in self.features)
        return (f"<div><b>Training dataset</b> <code>{html.escape(self.name)}</code> version {self.version}, "
                f"{html.escape(self.data_format)}, {self.row_count} rows at <code>{html.escape(self.location)}"
                f"</code><table><tr><th>feature</th><th>type</th></tr>{rows}</table></div>")
