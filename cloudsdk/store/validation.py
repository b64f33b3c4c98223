"""Data validation ("features unit testing"): rules per feature group, measured with DuckDB.

A :class:`Rule` measures one number per feature it names (or one for the whole frame, for
``size``) and checks it against the rule's ``min`` / ``max`` bounds (inclusive; either may be
left out). The rule types are a subset of Deequ's:

==================  ===============================================  ==================
rule_type           value measured, per feature                      features
==================  ===============================================  ==================
completeness        fraction of non-null values (1.0 on no rows)     any
uniqueness          fraction of non-null values occurring once       any comparable
distinctness        distinct values / non-null values                any comparable
min, max            smallest / largest non-null value                numeric
mean, sum, stddev   mean / sum / population standard deviation       numeric
size                the number of rows (no features)                 -
pattern             fraction of non-null values fully matching       string
                    ``pattern`` (RE2 syntax, DuckDB regexp_full_match)
allowed_values      fraction of non-null values in ``allowed_values``  string, numeric, boolean
==================  ===============================================  ==================

Fractions on no non-null values are 1.0 (nothing violates them); ``min`` / ``max`` /
``mean`` / ``stddev`` of no values cannot be measured and fail. Rules are checked when they
are defined (:func:`check_rule`), run in one DuckDB statement (:func:`measure`) before each
insert, on a dry run, and by the validation job; results are stored with the commit.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from cloudsdk._names import validate_name
from cloudsdk.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    SchemaMismatchError,
    UnsupportedError,
    ValidationFailedError,
)
from cloudsdk.store import catalog as C
from cloudsdk.store import schema
from cloudsdk.store import sql as sqlbox
from cloudsdk.store.offline import OfflineTable
from cloudsdk.store.ondemand import is_on_demand

log = logging.getLogger(__name__)

RULE_TYPES = ("completeness", "uniqueness", "distinctness", "min", "max", "mean", "sum", "stddev",
              "size", "pattern", "allowed_values")
FRACTION_RULES = frozenset({"completeness", "uniqueness", "distinctness", "pattern", "allowed_values"})
NUMERIC_RULES = frozenset({"min", "max", "mean", "sum", "stddev"})
LEVELS = ("warning", "error")
TRIGGERS = ("insert", "job")


@dataclass(frozen=True)
class Rule:
    """One validation rule of a feature group.

    Attributes:
        name: the rule's name, unique in its feature group (``^[a-z][a-z0-9_]{0,62}$``).
        rule_type: one of :data:`RULE_TYPES`.
        features: the features it measures (one check each); empty for ``size``.
        min: the smallest acceptable value (inclusive), or None.
        max: the largest acceptable value (inclusive), or None.
        level: "error" (a failure rejects the insert) or "warning" (it is recorded).
        hint: a note shown with the result.
        pattern: the regular expression of a ``pattern`` rule.
        allowed_values: the values of an ``allowed_values`` rule.
    """

    name: str
    rule_type: str
    features: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    level: str = "error"
    hint: str = ""
    pattern: str | None = None
    allowed_values: tuple[Any, ...] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        """The rule as JSON-able dict."""
        out = asdict(self)
        out["features"] = list(self.features)
        out["allowed_values"] = list(self.allowed_values) if self.allowed_values is not None else None
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Rule:
        """A rule from :meth:`to_dict`'s shape (or the API's keyword arguments), unchecked.

        Raises:
            InvalidArgumentError: unknown keys or a value of the wrong kind.
        """
        if not isinstance(raw, Mapping):
            raise InvalidArgumentError(f"a validation rule must be a mapping, got {type(raw).__name__}")
        known = {"name", "rule_type", "features", "min", "max", "level", "hint", "pattern", "allowed_values"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise InvalidArgumentError(f"unknown validation rule field(s) {unknown}; known: {sorted(known)}")
        features = raw.get("features")
        if features is None:
            feats: tuple[str, ...] = ()
        elif isinstance(features, str):
            feats = (features,)
        elif isinstance(features, Sequence) and all(isinstance(f, str) for f in features):
            feats = tuple(features)
        else:
            raise InvalidArgumentError(f"features must be a feature name or a list of names, got {features!r}")
        allowed = raw.get("allowed_values")
        if allowed is not None:
            if isinstance(allowed, str | bytes) or not isinstance(allowed, Sequence | set | frozenset):
                raise InvalidArgumentError(f"allowed_values must be a list of values, got {allowed!r}")
            allowed = tuple(allowed)
        return cls(
            name=raw.get("name"),  # type: ignore[arg-type]  # checked by check_rule
            rule_type=raw.get("rule_type"),  # type: ignore[arg-type]
            features=feats,
            min=_bound(raw.get("min"), "min"),
            max=_bound(raw.get("max"), "max"),
            level=raw.get("level", "error"),
            hint=raw.get("hint") or "",
            pattern=raw.get("pattern"),
            allowed_values=allowed,
        )


def _bound(value: Any, which: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"{which} must be a number or None, got {value!r}")
    if math.isnan(value):
        raise InvalidArgumentError(f"{which} must be a number, not NaN")
    return float(value)


def _kind(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        return _kind(t.value_type)
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "temporal"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary"
    return "nested"


def check_rule(rule: Rule, logical: pa.Schema) -> Rule:
    """Check a rule against a feature group's schema; returns it with default bounds filled in.

    Fraction rules (completeness, uniqueness, distinctness, pattern, allowed_values) without
    bounds get ``min=1.0`` (every value must pass); the other rules need at least one bound.

    Raises:
        InvalidNameError: a bad rule name.
        InvalidArgumentError: an unknown type or level, impossible bounds (min > max, a
            fraction outside [0, 1], a negative size or stddev maximum), a pattern that does
            not compile, missing or stray ``pattern`` / ``allowed_values``.
        SchemaMismatchError: unknown features, or a rule that does not fit a feature's type.
    """
    validate_name(rule.name, "validation rule")
    if rule.rule_type not in RULE_TYPES:
        raise InvalidArgumentError(
            f"rule {rule.name!r}: unknown rule_type {rule.rule_type!r}; use one of {', '.join(RULE_TYPES)}")
    if rule.level not in LEVELS:
        raise InvalidArgumentError(f"rule {rule.name!r}: level must be 'warning' or 'error', got {rule.level!r}")
    if not isinstance(rule.hint, str):
        raise InvalidArgumentError(f"rule {rule.name!r}: hint must be a string")
    lo, hi = rule.min, rule.max
    if lo is None and hi is None:
        if rule.rule_type not in FRACTION_RULES:
            raise InvalidArgumentError(
                f"rule {rule.name!r} ({rule.rule_type}) needs a min or a max bound (or both)")
        lo = 1.0
    if lo is not None and hi is not None and lo > hi:
        raise InvalidArgumentError(f"rule {rule.name!r}: min {lo} is greater than max {hi}; no value can pass")
    if rule.rule_type in FRACTION_RULES:
        for which, bound in (("min", lo), ("max", hi)):
            if bound is not None and not 0.0 <= bound <= 1.0:
                raise InvalidArgumentError(
                    f"rule {rule.name!r}: {rule.rule_type} is a fraction between 0 and 1; "
                    f"{which}={bound} is outside [0, 1]")
    if rule.rule_type in ("size", "stddev") and hi is not None and hi < 0:
        raise InvalidArgumentError(f"rule {rule.name!r}: {rule.rule_type} is never negative; max={hi} cannot pass")
    _check_features(rule, logical)
    _check_extras(rule, logical)
    return Rule(rule.name, rule.rule_type, rule.features, lo, hi, rule.level, rule.hint, rule.pattern,
                rule.allowed_values)


def _check_features(rule: Rule, logical: pa.Schema) -> None:
    if rule.rule_type == "size":
        if rule.features:
            raise InvalidArgumentError(f"rule {rule.name!r}: a size rule counts rows and takes no features")
        return
    if not rule.features:
        raise InvalidArgumentError(f"rule {rule.name!r} ({rule.rule_type}) needs the features it applies to")
    if len(set(rule.features)) != len(rule.features):
        raise InvalidArgumentError(f"rule {rule.name!r} names a feature twice: {list(rule.features)}")
    unknown = [f for f in rule.features if f not in logical.names]
    if unknown:
        raise SchemaMismatchError(
            f"rule {rule.name!r}: the feature group has no feature(s) {unknown} "
            f"(features: {', '.join(logical.names)})")
    fits = {"numeric": NUMERIC_RULES | {"completeness", "uniqueness", "distinctness", "allowed_values"},
            "string": {"completeness", "uniqueness", "distinctness", "pattern", "allowed_values"},
            "boolean": {"completeness", "allowed_values"},
            "temporal": {"completeness", "uniqueness", "distinctness"},
            "binary": {"completeness", "uniqueness", "distinctness"},
            "nested": {"completeness"}}
    for f in rule.features:
        t = logical.field(f).type
        if rule.rule_type not in fits[_kind(t)]:
            raise SchemaMismatchError(
                f"rule {rule.name!r}: a {rule.rule_type} rule does not fit feature {f!r} of type "
                f"{schema.feature_type(t)} (it takes {_takes(rule.rule_type)})")


def _takes(rule_type: str) -> str:
    if rule_type in NUMERIC_RULES:
        return "numeric features"
    if rule_type == "pattern":
        return "string features"
    if rule_type == "allowed_values":
        return "string, numeric or boolean features"
    return "features that are not arrays or structs"


def _check_extras(rule: Rule, logical: pa.Schema) -> None:
    if rule.rule_type == "pattern":
        if not isinstance(rule.pattern, str) or not rule.pattern:
            raise InvalidArgumentError(f"rule {rule.name!r}: a pattern rule needs pattern='<regular expression>'")
        try:
            sqlbox.execute(f"SELECT regexp_full_match('', {_literal(rule.pattern)})", {})
        except Exception as exc:  # SQLError: RE2 refused it
            raise InvalidArgumentError(
                f"rule {rule.name!r}: the pattern {rule.pattern!r} is not a valid regular expression "
                f"(RE2 syntax): {_first_line(str(exc)).removeprefix('the SQL query failed: ')}") from exc
    elif rule.pattern is not None:
        raise InvalidArgumentError(f"rule {rule.name!r}: pattern is only for pattern rules")
    if rule.rule_type == "allowed_values":
        if not rule.allowed_values:
            raise InvalidArgumentError(f"rule {rule.name!r}: an allowed_values rule needs a non-empty allowed_values list")
        for f in rule.features:
            kind = _kind(logical.field(f).type)
            want: tuple[type, ...] = {"string": (str,), "boolean": (bool,), "numeric": (int, float)}[kind]
            bad = [v for v in rule.allowed_values if not isinstance(v, want)
                   or (kind == "numeric" and isinstance(v, bool))]
            if bad:
                raise InvalidArgumentError(
                    f"rule {rule.name!r}: allowed_values {bad} do not fit feature {f!r} ({kind} values)")
    elif rule.allowed_values is not None:
        raise InvalidArgumentError(f"rule {rule.name!r}: allowed_values is only for allowed_values rules")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _expression(rule: Rule, feature: str | None) -> str:
    """The DuckDB expression (over table ``t``) of one check."""
    if rule.rule_type == "size":
        return "count(*)::DOUBLE"
    assert feature is not None
    c = _q(feature)
    nonnull = f"count({c})"
    if rule.rule_type == "completeness":
        return f"coalesce({nonnull}::DOUBLE / nullif(count(*), 0), 1.0)"
    if rule.rule_type == "distinctness":
        return f"coalesce(count(DISTINCT {c})::DOUBLE / nullif({nonnull}, 0), 1.0)"
    if rule.rule_type == "uniqueness":
        return (f"(SELECT coalesce(count(*) FILTER (WHERE n = 1)::DOUBLE / nullif(sum(n), 0), 1.0) "
                f"FROM (SELECT count(*) AS n FROM t WHERE {c} IS NOT NULL GROUP BY {c}))")
    if rule.rule_type in ("min", "max"):
        return f"{rule.rule_type}({c})::DOUBLE"
    if rule.rule_type == "mean":
        return f"avg({c}::DOUBLE)"
    if rule.rule_type == "sum":
        return f"coalesce(sum({c}::DOUBLE), 0.0)"
    if rule.rule_type == "stddev":
        return f"stddev_pop({c}::DOUBLE)"
    if rule.rule_type == "pattern":
        return (f"coalesce(count(*) FILTER (WHERE regexp_full_match({c}, {_literal(rule.pattern)}))::DOUBLE "
                f"/ nullif({nonnull}, 0), 1.0)")
    if rule.rule_type == "allowed_values":
        values = ", ".join(_literal(v) for v in rule.allowed_values or ())
        return f"coalesce(count(*) FILTER (WHERE {c} IN ({values}))::DOUBLE / nullif({nonnull}, 0), 1.0)"
    raise AssertionError(rule.rule_type)  # pragma: no cover - check_rule refused it


def measure(data: Any, rules: Sequence[Rule]) -> tuple[int, list[dict[str, Any]]]:
    """Measure every check of ``rules`` over ``data`` in one DuckDB statement.

    Args:
        data: a pyarrow Table (or dataset) holding the rules' features.
        rules: checked rules (:func:`check_rule`).

    Returns:
        The row count, and one result per (rule, feature): ``rule``, ``rule_type``,
        ``feature`` (None for size), ``value``, ``min``, ``max``, ``level``, ``hint``,
        ``passed``, ``message``.
    """
    checks = [(r, f) for r in rules for f in (r.features or (None,))]
    exprs = ["count(*)"] + [_expression(r, f) for r, f in checks]
    row = sqlbox.execute("SELECT " + ", ".join(exprs) + " FROM t", {"t": data}).to_pylist()[0]
    values = list(row.values())
    rows = int(values.pop(0))
    out = []
    for (rule, feature), value in zip(checks, values, strict=True):
        value = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
        passed = value is not None and (rule.min is None or value >= rule.min) and (
            rule.max is None or value <= rule.max)
        out.append({"rule": rule.name, "rule_type": rule.rule_type, "feature": feature, "value": value,
                    "min": rule.min, "max": rule.max, "level": rule.level, "hint": rule.hint,
                    "passed": passed, "message": _message(rule, feature, value, passed)})
    return rows, out


def _message(rule: Rule, feature: str | None, value: float | None, passed: bool) -> str:
    what = f"{rule.rule_type} of {feature!r}" if feature else "size"
    bounds = " and ".join(b for b in (f">= {rule.min:g}" if rule.min is not None else "",
                                      f"<= {rule.max:g}" if rule.max is not None else "") if b)
    if value is None:
        return f"{what} could not be measured (no non-null values); it must be {bounds}"
    shown = f"{value:g}" if rule.rule_type == "size" else f"{value:.6g}"
    return f"{what} is {shown}" + ("" if passed else f"; it must be {bounds}")


def report(rules: Sequence[Rule], data: Any, trigger: str) -> dict[str, Any]:
    """Validate ``data`` against ``rules``: the report (not stored).

    ``status`` is "failed" when an error-level check failed, "warning" when only
    warning-level checks failed, else "passed".
    """
    rows, results = measure(data, rules) if rules else (int(data.num_rows), [])
    failed = [r for r in results if not r["passed"]]
    status = ("failed" if any(r["level"] == "error" for r in failed)
              else "warning" if failed else "passed")
    return {"status": status, "passed": status != "failed", "trigger": trigger, "commit_version": None,
            "validated_at": None, "rows": rows, "results": results}


def failure_message(group: str, rep: Mapping[str, Any]) -> str:
    """The message of a ValidationFailedError: the failed error-level checks, one per line."""
    lines = [f"  - {r['rule']}: {r['message']}" + (f" ({r['hint']})" if r["hint"] else "")
             for r in rep["results"] if not r["passed"] and r["level"] == "error"]
    return (f"the rows do not pass the validation rules of {group}; nothing was written:\n"
            + "\n".join(lines))


class ValidationMixin:
    """The service's validation methods (mixed into FeatureStoreService)."""

    catalog: C.Catalog

    def _group_row(self, project: str, name: str, version: int | None) -> Any:
        raise NotImplementedError

    def read_group(self, project: str, name: str, version: int | None,
                   columns: Sequence[str] | None = None, as_of: Any = None) -> pa.Table:
        raise NotImplementedError

    # --- rules ---------------------------------------------------------------------------

    def _rules(self, fg_id: int) -> list[Rule]:
        with self.catalog.read() as conn:
            rows = conn.execute(sa.select(C.validation_rules.c.content).where(C.validation_rules.c.fg_id == fg_id)
                                .order_by(C.validation_rules.c.id))
            return [Rule.from_dict(json.loads(r[0])) for r in rows]

    def add_validation_rule(self, project: str, name: str, version: int | None,
                            rule: Mapping[str, Any]) -> dict[str, Any]:
        """Check a rule against the group's schema and store it; returns the stored rule.

        Raises:
            InvalidArgumentError, InvalidNameError, SchemaMismatchError: a bad rule (see
            :func:`check_rule`).
            AlreadyExistsError: the group has a rule of that name.
            UnsupportedError: an on-demand feature group (its data is not written here).
        """
        row = self._group_row(project, name, version)
        if is_on_demand(row):
            raise UnsupportedError(
                f"on-demand feature group {row.name!r} is not written by cloudsdk: validate it where "
                "its data is written", featuregroup=row.name)
        checked = check_rule(Rule.from_dict(rule), schema.deserialize_schema(row.arrow_schema))
        try:
            with self.catalog.begin() as conn:
                conn.execute(C.validation_rules.insert().values(
                    fg_id=row.id, name=checked.name, content=C.dumps(checked.to_dict(), sort_keys=False),
                    created=C.now()))
        except sa.exc.IntegrityError as exc:
            raise AlreadyExistsError(
                f"feature group {row.name!r} version {row.version} already has a validation rule "
                f"{checked.name!r}; remove it first, or choose another name", rule=checked.name) from exc
        return checked.to_dict()

    def get_validation_rules(self, project: str, name: str, version: int | None) -> list[dict[str, Any]]:
        """The group's validation rules, in the order they were added."""
        return [r.to_dict() for r in self._rules(self._group_row(project, name, version).id)]

    def remove_validation_rule(self, project: str, name: str, version: int | None, rule: str) -> list[dict[str, Any]]:
        """Remove a rule; returns the rules left.

        Raises:
            NotFoundError: the group has no rule of that name.
        """
        row = self._group_row(project, name, version)
        with self.catalog.begin() as conn:
            done = conn.execute(C.validation_rules.delete().where(
                (C.validation_rules.c.fg_id == row.id) & (C.validation_rules.c.name == rule)))
        if not done.rowcount:
            raise NotFoundError(f"feature group {row.name!r} version {row.version} has no validation rule {rule!r}",
                                rule=rule)
        return self.get_validation_rules(project, name, row.version)

    # --- running ---------------------------------------------------------------------------

    def validate(self, project: str, name: str, version: int | None, data: pa.Table) -> dict[str, Any]:
        """A dry run: the report of ``data`` against the group's rules (nothing is stored).

        Raises:
            SchemaMismatchError: ``data`` does not match the group's schema.
        """
        row = self._group_row(project, name, version)
        logical = schema.deserialize_schema(row.arrow_schema)
        data = schema.conform(data, logical, what=f"feature group {row.name!r} version {row.version}")
        return report(self._rules(row.id), data, "dry_run")

    def _validate_before_insert(self, row: Any, data: pa.Table) -> dict[str, Any] | None:
        """The insert's report (None when the group has no rules).

        Raises:
            ValidationFailedError: an error-level check failed (nothing is written).
        """
        rules = self._rules(row.id)
        if not rules:
            return None
        rep = report(rules, data, "insert")
        if rep["status"] == "failed":
            rep["validated_at"] = C.now().isoformat()
            raise ValidationFailedError(failure_message(f"feature group {row.name!r} version {row.version}", rep),
                                        rep, featuregroup=row.name, version=row.version)
        return rep

    def _rules_for_create(self, name: str, logical: pa.Schema, rules: Sequence[Mapping[str, Any]] | None,
                          data: pa.Table | None) -> tuple[list[Rule], dict[str, Any] | None]:
        """The checked rules of a new group, and the report of its first rows (None without rules
        or rows).

        Raises:
            InvalidArgumentError, SchemaMismatchError: a bad rule, or two rules of one name.
            ValidationFailedError: the first rows fail an error-level rule (nothing is created).
        """
        if rules is None:
            return [], None
        if isinstance(rules, Mapping | str) or not isinstance(rules, Sequence):
            raise InvalidArgumentError("validation_rules must be a list of rules (dicts)")
        checked = [check_rule(Rule.from_dict(r), logical) for r in rules]
        names = [r.name for r in checked]
        if len(set(names)) != len(names):
            raise InvalidArgumentError(f"validation_rules repeat a rule name: {names}")
        if not checked or data is None:
            return checked, None
        rep = report(checked, data, "insert")
        if rep["status"] == "failed":
            rep["validated_at"] = C.now().isoformat()
            raise ValidationFailedError(failure_message(f"new feature group {name!r}", rep), rep,
                                        featuregroup=name)
        return checked, rep

    @staticmethod
    def _store_rules(conn: Any, fg_id: int, rules: Sequence[Rule]) -> None:
        """Store a new group's rules (in the transaction ``conn`` that creates it)."""
        if rules:
            stamp = C.now()
            conn.execute(C.validation_rules.insert(), [
                {"fg_id": fg_id, "name": r.name, "content": C.dumps(r.to_dict(), sort_keys=False), "created": stamp}
                for r in rules])

    def _record_validation(self, fg_id: int, rep: Mapping[str, Any] | None, commit_version: int | None) -> None:
        """Store a write's report with its commit (a failure is logged: the commit has landed)."""
        if rep is None:
            return
        try:
            self._store_report(fg_id, dict(rep), commit_version)
        except Exception:
            log.warning("the validation report of commit %d (feature group id %d) could not be stored",
                        commit_version, fg_id, exc_info=True)

    def _store_report(self, fg_id: int, rep: dict[str, Any], commit_version: int | None) -> dict[str, Any]:
        stamp = C.now()
        rep["commit_version"] = commit_version
        rep["validated_at"] = stamp.isoformat()
        with self.catalog.begin() as conn:
            conn.execute(C.validation_results.insert().values(
                fg_id=fg_id, commit_version=commit_version, trigger=rep["trigger"], status=rep["status"],
                validated_at=stamp, content=C.dumps(rep, sort_keys=False)))
        return rep

    def run_validation(self, project: str, name: str, version: int | None,
                       commit_version: int | None = None) -> dict[str, Any]:
        """The validation job: validate the group's stored rows at a commit (default: the
        latest) and store the report with that commit.

        Raises:
            CommitNotFoundError: no such commit.
            UnsupportedError: an on-demand feature group.
        """
        row = self._group_row(project, name, version)
        if is_on_demand(row):
            raise UnsupportedError(f"on-demand feature group {row.name!r} has no stored rows to validate",
                                   featuregroup=row.name)
        rules = self._rules(row.id)
        from cloudsdk.store.online_service import need_offline

        need_offline(row)
        if commit_version is None:
            commit_version = OfflineTable(row.location).version()
        columns = sorted({f for r in rules for f in r.features}) or json.loads(row.primary_key)[:1]
        data = self.read_group(project, row.name, row.version, columns=columns, as_of=commit_version)
        return self._store_report(row.id, report(rules, data, "job"), commit_version)

    def validation_results(self, project: str, name: str, version: int | None,
                           commit_version: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Stored validation reports, newest first (only those of ``commit_version`` if given)."""
        row = self._group_row(project, name, version)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InvalidArgumentError(f"limit must be a positive integer, got {limit!r}")
        query = sa.select(C.validation_results.c.content).where(C.validation_results.c.fg_id == row.id)
        if commit_version is not None:
            query = query.where(C.validation_results.c.commit_version == commit_version)
        query = query.order_by(C.validation_results.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.catalog.read() as conn:
            return [json.loads(r[0]) for r in conn.execute(query)]


__all__ = ["LEVELS", "RULE_TYPES", "Rule", "ValidationMixin", "check_rule", "measure", "report"]
