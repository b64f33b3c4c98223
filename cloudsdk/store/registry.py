"""The feature registry of the store: search, tags, jobs, training-dataset metadata, provenance.

* :meth:`RegistryMixin.search`: keyword search over feature groups, features and training
  datasets (names, descriptions, feature descriptions, custom metadata, tags), one catalog read
  per table, matched in Python; results grouped by name with each version's matches.
* Tags (``registry_tags``) and the jobs that compute a feature group or a training dataset
  (``registry_jobs``) live in their own catalog tables, keyed by the feature group's or the
  dataset's id (deleting either deletes its tags and jobs).
* Provenance: which feature groups, versions, commits and features trained a dataset; which
  datasets read a feature group; and how two datasets differ (schema, statistics, rows by key).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from cloudsdk._names import validate_metadata
from cloudsdk._registry import normalize_jobs, tag_value, validate_tag
from cloudsdk.errors import (
    InvalidArgumentError,
    NotFoundError,
    SchemaMismatchError,
)
from cloudsdk.store import catalog as C
from cloudsdk.store import planner, schema
from cloudsdk.store import sql as sqlbox

KINDS = ("featuregroup", "feature", "training_dataset")
TARGET_KINDS = ("featuregroup", "training_dataset")
MAX_QUERY = 200
DEFAULT_LIMIT = 50
# Scores of a match: the name itself first, then the text around it.
SCORES = {
    "exact name": 100, "name prefix": 80, "name": 60, "feature name": 40, "description": 30,
    "tag": 25, "metadata": 25, "feature description": 20,
}
STAT_FIELDS = ("count", "nulls", "mean", "stddev", "min", "max")


def _check_query(query: object) -> str:
    if not isinstance(query, str) or not query.strip():
        raise InvalidArgumentError("search needs a non-empty query string")
    if len(query) > MAX_QUERY:
        raise InvalidArgumentError(f"the search query is longer than {MAX_QUERY} characters")
    return query.strip().lower()


def _check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgumentError(f"limit must be a positive integer, got {limit!r}")
    return limit


def _check_kind(kind: object, allowed: Sequence[str] = KINDS) -> str:
    if kind not in allowed:
        raise InvalidArgumentError(f"kind must be one of {', '.join(allowed)}, got {kind!r}")
    return str(kind)


def _like_escape(text: str) -> str:
    """``text`` for a LIKE pattern with ``\\`` as the escape: ``%``, ``_`` and ``\\`` mean themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _name_match(name: str, q: str) -> str | None:
    low = name.lower()
    if low == q:
        return "exact name"
    if low.startswith(q):
        return "name prefix"
    if q in low:
        return "name"
    return None


def _snippet(text: str, q: str, width: int = 80) -> str:
    """The text around the first match (at most ``width`` characters)."""
    if len(text) <= width:
        return text
    at = max(text.lower().find(q) - width // 4, 0)
    return ("…" if at else "") + text[at:at + width] + ("…" if at + width < len(text) else "")


class _Hits:
    """The matches of one version of one result."""

    def __init__(self) -> None:
        self.matches: list[dict[str, Any]] = []

    def add(self, how: str, field: str, text: str, q: str, **extra: Any) -> None:
        self.matches.append({"match": how, "field": field, "text": _snippet(text, q), **extra})

    @property
    def score(self) -> int:
        return max((SCORES[m["match"]] for m in self.matches), default=0)


def _text_hits(hits: _Hits, q: str, description: str, metadata: Mapping[str, str],
               tags: Sequence[tuple[str, str | None]]) -> None:
    if q in description.lower():
        hits.add("description", "description", description, q)
    for key, value in metadata.items():
        if q in key.lower() or q in str(value).lower():
            hits.add("metadata", f"metadata.{key}", f"{key}: {value}", q)
    for tag, tag_text in tags:
        if q in tag.lower() or (tag_text is not None and q in tag_text.lower()):
            hits.add("tag", f"tag.{tag}", tag if tag_text is None else f"{tag}: {tag_text}", q)


def _delta(a: Any, b: Any) -> Any:
    numeric = (int, float)
    if isinstance(a, numeric) and isinstance(b, numeric) and not isinstance(a, bool) and not isinstance(b, bool):
        return b - a
    return None


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class RegistryMixin:
    """Search, tags, jobs, training-dataset metadata and provenance of :class:`FeatureStoreService`."""

    catalog: C.Catalog

    def _fs_id(self, project: str) -> int:
        raise NotImplementedError

    def _group_row(self, project: str, name: str, version: int | None) -> Any:
        raise NotImplementedError

    def _td_row(self, project: str, name: str, version: int | None) -> Any:
        raise NotImplementedError

    def _td_rows(self, project: str, name: str | None = None) -> list[Any]:
        raise NotImplementedError

    def _group_infos(self, project: str) -> list[planner.GroupInfo]:
        raise NotImplementedError

    def read_training_dataset(self, project: str, name: str, version: int | None = None,
                              split: str | None = None) -> pa.Table:
        raise NotImplementedError

    def training_dataset_statistics(self, project: str, name: str,
                                    version: int | None = None) -> dict[str, Any] | None:
        raise NotImplementedError

    # --- search ----------------------------------------------------------------------------------

    def search(self, project: str, query: str, kind: str | None = None,
               limit: int = DEFAULT_LIMIT) -> list[dict[str, Any]]:
        """Keyword search (case-insensitive, the query taken literally) over the project's
        feature groups, features and training datasets.

        Args:
            project: the project whose feature store is searched.
            query: the text to find in names, descriptions, feature descriptions, custom
                metadata keys and values, and tags.
            kind: only ``"featuregroup"``, ``"feature"`` or ``"training_dataset"`` results.
            limit: at most this many results (each result holds all its matching versions).

        Returns:
            Results, best first: ``{"kind", "name", "score", "match", "versions": [{"version",
            "score", "description", "matches": [{"match", "field", "text"}]}]}`` (a feature
            also has ``"featuregroup"`` and ``"type"``); versions best first, then newest first.
            Scores: exact name 100, name prefix 80, name substring 60, a feature's name (of a
            group or dataset) 40, description 30, tag or metadata 25, feature description 20.
        """
        q = _check_query(query)
        limit = _check_limit(limit)
        kinds = KINDS if kind is None else (_check_kind(kind),)
        fs_id = self._fs_id(project)
        fg, ft, td, tg = C.feature_groups, C.features, C.training_datasets, C.registry_tags
        with self.catalog.read() as conn:
            groups = list(conn.execute(sa.select(fg.c.id, fg.c.name, fg.c.version, fg.c.description,
                                                 fg.c.custom_metadata).where(fg.c.fs_id == fs_id)))
            feature_query = (sa.select(ft.c.fg_id, ft.c.name, ft.c.type, ft.c.description)
                             .join(fg, fg.c.id == ft.c.fg_id).where(fg.c.fs_id == fs_id)
                             .order_by(ft.c.fg_id, ft.c.position))
            if q.isascii():  # only features that can match (the database lower-cases ASCII only)
                pattern = "%" + _like_escape(q) + "%"
                feature_query = feature_query.where(sa.func.lower(ft.c.name).like(pattern, escape="\\")
                                                    | sa.func.lower(ft.c.description).like(pattern, escape="\\"))
            feats = list(conn.execute(feature_query))
            dsets = list(conn.execute(sa.select(td.c.id, td.c.name, td.c.version, td.c.description,
                                                td.c.custom_metadata, td.c.arrow_schema)
                                      .where(td.c.fs_id == fs_id))) if "training_dataset" in kinds else []
            tags = list(conn.execute(sa.select(tg.c.fg_id, tg.c.td_id, tg.c.name, tg.c.value).where(
                tg.c.fg_id.in_(sa.select(fg.c.id).where(fg.c.fs_id == fs_id))
                | tg.c.td_id.in_(sa.select(td.c.id).where(td.c.fs_id == fs_id))).order_by(tg.c.name)))
        fg_tags: dict[int, list[tuple[str, str | None]]] = {}
        td_tags: dict[int, list[tuple[str, str | None]]] = {}
        for t in tags:
            (fg_tags.setdefault(t.fg_id, []) if t.fg_id is not None else td_tags.setdefault(t.td_id, [])).append(
                (t.name, t.value))
        # plain tuples with lower-cased text: one pass over thousands of rows stays fast
        by_group: dict[int, list[tuple[str, str, str, str, str]]] = {}
        for f in feats:
            by_group.setdefault(f.fg_id, []).append((f.name, f.name.lower(), f.type, f.description,
                                                     f.description.lower()))
        results: dict[tuple[str, ...], dict[int, tuple[_Hits, dict[str, Any]]]] = {}

        def keep(key: tuple[str, ...], version: int, hits: _Hits, info: dict[str, Any]) -> None:
            if hits.matches:
                results.setdefault(key, {})[version] = (hits, info)

        want_groups, want_features = "featuregroup" in kinds, "feature" in kinds
        for g in groups:
            gid, gname, gversion, gdesc, gmeta = g.id, g.name, g.version, g.description, g.custom_metadata
            gfeats = by_group.get(gid, ())
            if want_groups:
                hits = _Hits()
                how = _name_match(gname, q)
                if how:
                    hits.add(how, "name", gname, q)
                _text_hits(hits, q, gdesc, json.loads(gmeta) if gmeta != "{}" else {}, fg_tags.get(gid, []))
                for fname, fname_low, _ftype, fdesc, fdesc_low in gfeats:
                    if q in fname_low:
                        hits.add("feature name", f"feature.{fname}", fname, q)
                    if q in fdesc_low:
                        hits.add("feature description", f"feature.{fname}.description", fdesc, q)
                keep(("featuregroup", gname), gversion, hits, {"description": gdesc})
            if want_features:
                for fname, fname_low, ftype, fdesc, fdesc_low in gfeats:
                    if q not in fname_low and q not in fdesc_low:
                        continue
                    hits = _Hits()
                    how = _name_match(fname, q)
                    if how:
                        hits.add(how, "name", fname, q)
                    if q in fdesc_low:
                        hits.add("description", "description", fdesc, q)
                    keep(("feature", fname, gname), gversion, hits, {"description": fdesc, "type": ftype})
        for d in dsets:
            hits = _Hits()
            how = _name_match(d.name, q)
            if how:
                hits.add(how, "name", d.name, q)
            _text_hits(hits, q, d.description, json.loads(d.custom_metadata), td_tags.get(d.id, []))
            for col in _schema_names(d.arrow_schema):
                if q in col.lower():
                    hits.add("feature name", f"feature.{col}", col, q)
            keep(("training_dataset", d.name), d.version, hits, {"description": d.description})

        out = []
        for key, versions in results.items():
            ordered = sorted(versions.items(), key=lambda kv: (-kv[1][0].score, -kv[0]))
            entries = [{"version": v, "score": h.score, **info, "matches": h.matches} for v, (h, info) in ordered]
            best = entries[0]
            item: dict[str, Any] = {"kind": key[0], "name": key[1], "score": best["score"],
                                    "match": max(best["matches"], key=lambda m: SCORES[m["match"]])["match"],
                                    "versions": entries}
            if key[0] == "feature":
                item["featuregroup"] = key[2]
                item["type"] = best["type"]
            out.append(item)
        order = {k: i for i, k in enumerate(KINDS)}
        out.sort(key=lambda r: (-r["score"], order[r["kind"]], r["name"], r.get("featuregroup", "")))
        return out[:limit]

    # --- tags --------------------------------------------------------------------------------------

    def _target(self, project: str, kind: str, name: str, version: int | None) -> tuple[sa.Column[Any], int]:
        _check_kind(kind, TARGET_KINDS)
        if kind == "featuregroup":
            return C.registry_tags.c.fg_id, int(self._group_row(project, name, version).id)
        return C.registry_tags.c.td_id, int(self._td_row(project, name, version).id)

    def _tags_of(self, conn: Any, column: str, target_id: int) -> dict[str, str | None]:
        rows = conn.execute(sa.select(C.registry_tags.c.name, C.registry_tags.c.value)
                            .where(C.registry_tags.c[column] == target_id).order_by(C.registry_tags.c.name))
        return {r.name: r.value for r in rows}

    def add_tag(self, project: str, kind: str, name: str, version: int | None, tag: str,
                value: Any = None) -> dict[str, str | None]:
        """Attach tag ``tag`` (with an optional value; an existing tag's value is replaced) to a
        feature group (``kind="featuregroup"``) or a training dataset (``"training_dataset"``);
        returns all its tags."""
        validate_tag(tag)
        text = tag_value(value)
        column, target_id = self._target(project, kind, name, version)
        with self.catalog.begin() as conn:
            conn.execute(C.registry_tags.delete().where((column == target_id) & (C.registry_tags.c.name == tag)))
            conn.execute(C.registry_tags.insert().values(**{column.name: target_id}, name=tag, value=text,
                                                         created=C.now()))
            return self._tags_of(conn, column.name, target_id)

    def get_tags(self, project: str, kind: str, name: str, version: int | None) -> dict[str, str | None]:
        """The tags of a feature group or a training dataset: ``{tag: value or None}``."""
        column, target_id = self._target(project, kind, name, version)
        with self.catalog.read() as conn:
            return self._tags_of(conn, column.name, target_id)

    def remove_tag(self, project: str, kind: str, name: str, version: int | None, tag: str) -> dict[str, str | None]:
        """Remove a tag; returns the tags left.

        Raises:
            NotFoundError: the feature group or dataset has no such tag.
        """
        validate_tag(tag)
        column, target_id = self._target(project, kind, name, version)
        with self.catalog.begin() as conn:
            done = conn.execute(C.registry_tags.delete().where((column == target_id)
                                                               & (C.registry_tags.c.name == tag)))
            if not done.rowcount:
                raise NotFoundError(f"{kind.replace('_', ' ')} {name!r} has no tag {tag!r}")
            return self._tags_of(conn, column.name, target_id)

    # --- jobs --------------------------------------------------------------------------------------

    def _jobs_of(self, conn: Any, column: str, target_id: int) -> list[dict[str, str | None]]:
        rows = conn.execute(sa.select(C.registry_jobs.c.name, C.registry_jobs.c.url)
                            .where(C.registry_jobs.c[column] == target_id).order_by(C.registry_jobs.c.position))
        return [{"name": r.name, "url": r.url} for r in rows]

    def set_jobs(self, project: str, kind: str, name: str, version: int | None,
                 jobs: Sequence[Any] | None) -> list[dict[str, str | None]]:
        """Record the jobs that compute a feature group or a training dataset (replacing those
        recorded before): names, or ``{"name", "url"}`` dicts. Returns ``[{"name", "url"}]``."""
        clean = normalize_jobs(jobs)
        column, target_id = self._target(project, kind, name, version)
        with self.catalog.begin() as conn:
            conn.execute(C.registry_jobs.delete().where(C.registry_jobs.c[column.name] == target_id))
            if clean:
                conn.execute(C.registry_jobs.insert(), [{column.name: target_id, "position": i, **j}
                                                         for i, j in enumerate(clean)])
        return clean

    def get_jobs(self, project: str, kind: str, name: str, version: int | None) -> list[dict[str, str | None]]:
        """The jobs recorded for a feature group or a training dataset."""
        column, target_id = self._target(project, kind, name, version)
        with self.catalog.read() as conn:
            return self._jobs_of(conn, column.name, target_id)

    def _registry_fields(self, kind: str, target_id: int) -> dict[str, Any]:
        """``{"tags", "jobs"}`` of a feature group or dataset row (for its description)."""
        column = "fg_id" if kind == "featuregroup" else "td_id"
        with self.catalog.read() as conn:
            return {"tags": self._tags_of(conn, column, target_id), "jobs": self._jobs_of(conn, column, target_id)}

    # --- training-dataset metadata ---------------------------------------------------------------

    def _set_td_metadata(self, td_id: int, values: Mapping[str, str]) -> None:
        with self.catalog.begin() as conn:
            conn.execute(C.training_datasets.update().where(C.training_datasets.c.id == td_id)
                         .values(custom_metadata=C.dumps(dict(values))))

    def add_training_dataset_metadata(self, project: str, name: str, version: int | None,
                                      items: Mapping[str, str]) -> dict[str, str]:
        """Attach (or overwrite) custom metadata of a training dataset; returns all of it."""
        row = self._td_row(project, name, version)
        current = json.loads(row.custom_metadata)
        current.update(validate_metadata(items))
        self._set_td_metadata(row.id, current)
        return dict(current)

    def get_training_dataset_metadata(self, project: str, name: str, version: int | None,
                                      keys: Sequence[str] | None = None) -> dict[str, str]:
        """A training dataset's custom metadata, or only ``keys`` (unknown keys left out)."""
        current: dict[str, str] = json.loads(self._td_row(project, name, version).custom_metadata)
        if keys is None:
            return current
        wanted = [keys] if isinstance(keys, str) else list(keys)
        return {k: current[k] for k in wanted if k in current}

    def remove_training_dataset_metadata(self, project: str, name: str, version: int | None,
                                         keys: Sequence[str]) -> dict[str, str]:
        """Remove custom metadata keys of a training dataset; returns what is left."""
        row = self._td_row(project, name, version)
        current = json.loads(row.custom_metadata)
        for k in [keys] if isinstance(keys, str) else list(keys):
            current.pop(k, None)
        self._set_td_metadata(row.id, current)
        return dict(current)

    # --- provenance --------------------------------------------------------------------------------

    def training_dataset_features(self, project: str, name: str, version: int | None = None) -> dict[str, Any]:
        """Which features trained a dataset: from its provenance, the feature groups, versions
        and commits it read and the columns each contributed.

        Returns:
            ``{"name", "version", "query", "feature_groups": [{"name", "version", "commit",
            "features": [...]}], "features": [{"name", "type", "featuregroup", "version",
            "commit"}]}``; a column no group gave (labels of a point-in-time dataset, or any
            column of a dataset written from a dataframe) has ``featuregroup`` None.
        """
        r = self._td_row(project, name, version)
        prov = json.loads(r.provenance)
        groups = [dict(g) for g in prov.get("feature_groups") or []]
        source: dict[str, tuple[str, int]] = {}
        query = prov.get("query")
        if isinstance(query, dict):
            infos = {(g.name, g.version): g for g in self._group_infos(project)}
            try:
                _, outputs = planner.to_sql(query, infos)
                source = {col: (g.name, g.version) for col, g in outputs}
            except Exception:  # a group read then was deleted since: fall back to the spec
                source = _spec_sources(query)
        commits = {(g["name"], int(g["version"])): g.get("commit") for g in groups}
        features = []
        for field in schema.deserialize_schema(r.arrow_schema):
            src = source.get(field.name)
            features.append({"name": field.name, "type": schema.feature_type(field.type),
                             "featuregroup": src[0] if src else None, "version": src[1] if src else None,
                             "commit": commits.get(src) if src else None})
        for g in groups:
            g["features"] = [f["name"] for f in features
                             if (f["featuregroup"], f["version"]) == (g["name"], int(g["version"]))]
        return {"name": r.name, "version": r.version, "query": query, "feature_groups": groups,
                "features": features}

    def group_training_datasets(self, project: str, name: str, version: int | None = None) -> list[dict[str, Any]]:
        """Which training datasets were built from a feature group version: ``[{"name",
        "version", "featuregroup_version", "commit", "created"}]`` by dataset name and version."""
        row = self._group_row(project, name, version)
        out = []
        for r in self._td_rows(project):
            for g in json.loads(r.provenance).get("feature_groups") or []:
                if g.get("name") == name and int(g.get("version", -1)) == row.version:
                    out.append({"name": r.name, "version": r.version, "featuregroup_version": row.version,
                                "commit": g.get("commit"), "created": r.created.isoformat()})
        return out

    def compare_training_datasets(self, project: str, name: str, version: int | None, other: str,
                                  other_version: int | None = None,
                                  keys: str | Sequence[str] | None = None) -> dict[str, Any]:
        """How the data changed from dataset A (``name``, ``version``) to dataset B (``other``,
        ``other_version``; None: the latest).

        Returns:
            ``{"a", "b", "schema": {"added", "removed", "type_changed", "common"},
            "statistics": {"row_count": {"a", "b", "delta"}, "features": {col: {stat: {"a", "b",
            "delta"}}}} | None, "rows": {"keys", "only_a", "only_b", "both", "changed",
            "unchanged", "compared"} | None}``. ``rows`` needs ``keys``: columns of both
            datasets, unique in each (rows whose key is null match nothing); ``changed`` counts
            keys in both whose common, same-typed columns differ. ``statistics`` is None when
            either dataset has no stored statistics; deltas are B - A.

        Raises:
            SchemaMismatchError: a key column missing from a dataset, or typed differently.
            InvalidArgumentError: a key that repeats in a dataset.
        """
        ra, rb = self._td_row(project, name, version), self._td_row(project, other, other_version)
        sa_, sb = schema.deserialize_schema(ra.arrow_schema), schema.deserialize_schema(rb.arrow_schema)
        ta = {f.name: schema.feature_type(f.type) for f in sa_}
        tb = {f.name: schema.feature_type(f.type) for f in sb}
        common = [c for c in ta if c in tb]
        out: dict[str, Any] = {
            "a": {"name": ra.name, "version": ra.version, "row_count": ra.row_count},
            "b": {"name": rb.name, "version": rb.version, "row_count": rb.row_count},
            "schema": {
                "added": [{"name": c, "type": t} for c, t in tb.items() if c not in ta],
                "removed": [{"name": c, "type": t} for c, t in ta.items() if c not in tb],
                "type_changed": [{"name": c, "a": ta[c], "b": tb[c]} for c in common if ta[c] != tb[c]],
                "common": common,
            },
        }
        out["statistics"] = self._statistics_diff(project, ra, rb, common)
        key_list = [keys] if isinstance(keys, str) else list(keys or [])
        out["rows"] = None
        if key_list:
            for k in key_list:
                if k not in ta or k not in tb:
                    which = ra.name if k not in ta else rb.name
                    raise SchemaMismatchError(f"key column {k!r} is not a column of training dataset {which!r}")
                if ta[k] != tb[k]:
                    raise SchemaMismatchError(f"key column {k!r} is {ta[k]} in {ra.name!r} but {tb[k]} in {rb.name!r}")
            compared = [c for c in common if c not in key_list and ta[c] == tb[c]]
            table_a = self.read_training_dataset(project, ra.name, ra.version)
            table_b = self.read_training_dataset(project, rb.name, rb.version)
            out["rows"] = _row_diff(table_a, table_b, key_list, compared, (ra.name, rb.name))
        return out

    def _statistics_diff(self, project: str, ra: Any, rb: Any, common: Sequence[str]) -> dict[str, Any] | None:
        sa_ = self.training_dataset_statistics(project, ra.name, ra.version)
        sb = self.training_dataset_statistics(project, rb.name, rb.version)
        if not sa_ or not sb:
            return None
        fa, fb = sa_.get("features") or {}, sb.get("features") or {}
        features: dict[str, Any] = {}
        for col in common:
            if col not in fa or col not in fb:
                continue
            entry = {}
            for stat in STAT_FIELDS:
                if stat in fa[col] or stat in fb[col]:
                    a, b = fa[col].get(stat), fb[col].get(stat)
                    entry[stat] = {"a": a, "b": b, "delta": _delta(a, b)}
            features[col] = entry
        rows_a, rows_b = sa_.get("row_count"), sb.get("row_count")
        return {"row_count": {"a": rows_a, "b": rows_b, "delta": _delta(rows_a, rows_b)}, "features": features}


def _schema_names(serialized: str) -> list[str]:
    try:
        return list(pa.ipc.read_schema(pa.py_buffer(base64.b64decode(serialized))).names)
    except (ValueError, pa.ArrowException):
        return []


def _spec_sources(spec: Mapping[str, Any]) -> dict[str, tuple[str, int]]:
    """Output column -> group, read from the spec alone (explicit feature lists only)."""
    out: dict[str, tuple[str, int]] = {}
    for feat in spec.get("features") or []:
        out.setdefault(str(feat), (spec["fg"]["name"], int(spec["fg"]["version"])))
    for join in spec.get("joins") or []:
        for col, src in _spec_sources(join["query"]).items():
            out.setdefault(col, src)
    return out


def _row_diff(table_a: pa.Table, table_b: pa.Table, keys: Sequence[str], compared: Sequence[str],
              names: tuple[str, str]) -> dict[str, Any]:
    """Row-level counts of two tables joined on ``keys``, in DuckDB."""
    key_cols = ", ".join(_q(k) for k in keys)
    for label, table in (("a", table_a), ("b", table_b)):
        dup = sqlbox.execute(f"SELECT count(*) AS n FROM (SELECT {key_cols} FROM t GROUP BY ALL "
                             "HAVING count(*) > 1)", {"t": table}).column("n")[0].as_py()
        if dup:
            name = names[0] if label == "a" else names[1]
            raise InvalidArgumentError(
                f"training dataset {name!r} has {dup} repeated key(s) {list(keys)}: row-level counts need "
                "keys that are unique in both datasets")
    cols = ", ".join(_q(c) for c in [*keys, *compared])
    on = " AND ".join(f"a.{_q(k)} = b.{_q(k)}" for k in keys)
    differ = " OR ".join(f"a.{_q(c)} IS DISTINCT FROM b.{_q(c)}" for c in compared) or "false"
    sql = (
        "SELECT count(*) FILTER (WHERE b.__in_b IS NULL) AS only_a, "
        "count(*) FILTER (WHERE a.__in_a IS NULL) AS only_b, "
        "count(*) FILTER (WHERE a.__in_a AND b.__in_b) AS both_, "
        f"count(*) FILTER (WHERE a.__in_a AND b.__in_b AND ({differ})) AS changed "
        f"FROM (SELECT {cols}, true AS __in_a FROM ta) a "
        f"FULL OUTER JOIN (SELECT {cols}, true AS __in_b FROM tb) b ON {on}"
    )
    row = sqlbox.execute(sql, {"ta": table_a, "tb": table_b}).to_pylist()[0]
    both = int(row["both_"] or 0)
    changed = int(row["changed"] or 0)
    return {"keys": list(keys), "only_a": int(row["only_a"] or 0), "only_b": int(row["only_b"] or 0),
            "both": both, "changed": changed, "unchanged": both - changed, "compared": list(compared)}


__all__ = ["KINDS", "RegistryMixin", "normalize_jobs", "validate_tag"]
