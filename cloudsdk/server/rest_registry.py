"""REST routes of the registry: data validation (store/validation.py) and search, tags, jobs,
training-dataset metadata and provenance (store/registry.py).

Registered by :func:`cloudsdk.server.rest.create_app` through :func:`add_registry_routes`,
with the same helpers (``route``, ``guard``, ``call``) as every other route.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Query, Request

from cloudsdk.errors import InvalidArgumentError
from cloudsdk.server.rest import Caller, RouteKit, _arrow_body, _is_str_list, _json_body


def add_registry_routes(kit: RouteKit) -> None:
    """Add the validation and registry routes to the app behind ``kit``."""
    route, guard, call, obj, version_q = kit.route, kit.guard, kit.call, kit.obj, kit.version_q

    # --- data validation (store/validation.py) ---------------------------------------------------

    @route("get_validation_rules")
    async def get_validation_rules(p: str, name: str, version: int | None = version_q,
                                   who: Caller = Depends(guard("get_validation_rules"))) -> Any:
        return await call("get_validation_rules", p, name, version)

    @route("add_validation_rule", status_code=201, body=obj(rule={"type": "object"}))
    async def add_validation_rule(request: Request, p: str, name: str, version: int | None = version_q,
                                  who: Caller = Depends(guard("add_validation_rule"))) -> Any:
        """Body: ``{"rule": {"name", "rule_type", "features", "min", "max", "level", "hint",
        "pattern", "allowed_values"}}``."""
        rule = (await _json_body(request)).get("rule")
        if not isinstance(rule, dict):
            raise InvalidArgumentError('the body must be {"rule": {...}}')
        return await call("add_validation_rule", p, name, version, rule, lock=("fg", p, name))

    @route("remove_validation_rule")
    async def remove_validation_rule(p: str, name: str, rule: str, version: int | None = version_q,
                                     who: Caller = Depends(guard("remove_validation_rule"))) -> Any:
        return await call("remove_validation_rule", p, name, version, rule, lock=("fg", p, name))

    @route("validate")
    async def validate(request: Request, p: str, name: str, who: Caller = Depends(guard("validate"))) -> Any:
        """A dry run of the Arrow body against the group's rules; nothing is stored. Options: ``version``."""
        table, options = await _arrow_body(request)
        return await call("validate", p, name, options.get("version"), table)

    @route("run_validation", body=obj(commit_version={"type": "integer"}))
    async def run_validation(request: Request, p: str, name: str, version: int | None = version_q,
                             who: Caller = Depends(guard("run_validation"))) -> Any:
        """The validation job: validate the stored rows at a commit and store the report."""
        commit = (await _json_body(request)).get("commit_version")
        if commit is not None and (isinstance(commit, bool) or not isinstance(commit, int)):
            raise InvalidArgumentError('"commit_version" must be an integer commit id')
        return await call("run_validation", p, name, version, commit, lock=("fg", p, name))

    @route("validation_results")
    async def validation_results(p: str, name: str, version: int | None = version_q,
                                 commit_version: int | None = Query(None, description="reports of this commit"),
                                 limit: int | None = Query(None, ge=1, description="at most this many reports"),
                                 who: Caller = Depends(guard("validation_results"))) -> Any:
        return await call("validation_results", p, name, version, commit_version, limit)

    # --- the registry: search, tags, jobs, dataset metadata, provenance (store/registry.py) ----------

    def _lock_of(kind: str, p: str, name: str) -> tuple[str, ...]:
        return ("td" if kind == "training_dataset" else "fg", p, name)

    @route("search")
    async def search(p: str, q: str = Query(..., description="the text to find"),
                     kind: str | None = Query(None, description="featuregroup | feature | training_dataset"),
                     limit: int = Query(50, ge=1, le=1000, description="at most this many results"),
                     who: Caller = Depends(guard("search"))) -> Any:
        """Keyword search over feature groups, features and training datasets."""
        return await call("search", p, q, kind, limit)

    @route("get_tags")
    async def get_tags(p: str, kind: str, name: str, version: int | None = version_q,
                       who: Caller = Depends(guard("get_tags"))) -> Any:
        return await call("get_tags", p, kind, name, version)

    @route("add_tag", body=obj(tag={"type": "string"}, value={"type": "string"}))
    async def add_tag(request: Request, p: str, kind: str, name: str, version: int | None = version_q,
                      who: Caller = Depends(guard("add_tag"))) -> Any:
        body = await _json_body(request)
        if not isinstance(body.get("tag"), str):
            raise InvalidArgumentError('the body must be {"tag": name, "value": text or null}')
        return await call("add_tag", p, kind, name, version, body["tag"], body.get("value"),
                          lock=_lock_of(kind, p, name))

    @route("remove_tag")
    async def remove_tag(p: str, kind: str, name: str, tag: str, version: int | None = version_q,
                         who: Caller = Depends(guard("remove_tag"))) -> Any:
        return await call("remove_tag", p, kind, name, version, tag, lock=_lock_of(kind, p, name))

    @route("get_jobs")
    async def get_jobs(p: str, kind: str, name: str, version: int | None = version_q,
                       who: Caller = Depends(guard("get_jobs"))) -> Any:
        return await call("get_jobs", p, kind, name, version)

    @route("set_jobs", body=obj(jobs={"type": "array"}))
    async def set_jobs(request: Request, p: str, kind: str, name: str, version: int | None = version_q,
                       who: Caller = Depends(guard("set_jobs"))) -> Any:
        jobs = (await _json_body(request)).get("jobs")
        if not isinstance(jobs, list):
            raise InvalidArgumentError('the body must be {"jobs": [name or {"name", "url"}, ...]}')
        return await call("set_jobs", p, kind, name, version, jobs, lock=_lock_of(kind, p, name))

    @route("get_training_dataset_metadata")
    async def get_training_dataset_metadata(p: str, name: str, version: int | None = version_q,
                                            keys: list[str] | None = Query(None, description="only these keys"),
                                            who: Caller = Depends(guard("get_training_dataset_metadata"))) -> Any:
        return await call("get_training_dataset_metadata", p, name, version, keys)

    @route("add_training_dataset_metadata",
           body=obj(items={"type": "object", "additionalProperties": {"type": "string"}}))
    async def add_training_dataset_metadata(request: Request, p: str, name: str, version: int | None = version_q,
                                            who: Caller = Depends(guard("add_training_dataset_metadata"))) -> Any:
        items = (await _json_body(request)).get("items")
        if not isinstance(items, dict):
            raise InvalidArgumentError('the body must be {"items": {key: value, ...}}')
        return await call("add_training_dataset_metadata", p, name, version, items, lock=("td", p, name))

    @route("remove_training_dataset_metadata", body=obj(keys={"type": "array", "items": {"type": "string"}}))
    async def remove_training_dataset_metadata(
            request: Request, p: str, name: str, version: int | None = version_q,
            who: Caller = Depends(guard("remove_training_dataset_metadata"))) -> Any:
        keys = (await _json_body(request)).get("keys")
        if not _is_str_list(keys):
            raise InvalidArgumentError('the body must be {"keys": [key, ...]}')
        return await call("remove_training_dataset_metadata", p, name, version, keys, lock=("td", p, name))

    @route("training_dataset_features")
    async def training_dataset_features(p: str, name: str, version: int | None = version_q,
                                        who: Caller = Depends(guard("training_dataset_features"))) -> Any:
        """Which feature groups, versions, commits and features trained the dataset."""
        return await call("training_dataset_features", p, name, version)

    @route("group_training_datasets")
    async def group_training_datasets(p: str, name: str, version: int | None = version_q,
                                      who: Caller = Depends(guard("group_training_datasets"))) -> Any:
        """The training datasets built from the feature group version."""
        return await call("group_training_datasets", p, name, version)

    @route("compare_training_datasets")
    async def compare_training_datasets(
            p: str, name: str, version: int | None = version_q,
            other: str = Query(..., description="the dataset to compare with (B)"),
            other_version: int | None = Query(None, description="B's version (default: the latest)"),
            keys: list[str] | None = Query(None, description="key columns for row-level counts"),
            who: Caller = Depends(guard("compare_training_datasets"))) -> Any:
        """Schema, statistics and (with keys) row-level differences from this dataset to ``other``."""
        return await call("compare_training_datasets", p, name, version, other, other_version, keys)

