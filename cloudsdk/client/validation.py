"""Validation reports of the object API (see docs/validation.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloudsdk.errors import ValidationFailedError

RESULT_COLUMNS = ["rule", "rule_type", "feature", "value", "min", "max", "level", "passed", "hint", "message"]


class ValidationReport:
    """The outcome of validating rows against a feature group's rules.

    Attributes:
        status: "passed", "warning" (only warning-level checks failed) or "failed" (an
            error-level check failed).
        passed: ``status != "failed"``.
        trigger: "insert", "job" (``fg.run_validation()``) or "dry_run" (``fg.validate(df)``).
        commit_version: the commit it validated (None for a dry run or a rejected insert).
        validated_at: when it ran (ISO 8601, UTC; None for a dry run).
        rows: the number of rows validated.
        results: one dict per (rule, feature): ``rule``, ``rule_type``, ``feature``,
            ``value``, ``min``, ``max``, ``level``, ``passed``, ``hint``, ``message``.

    Example::

        report = fg.validate(df)
        if not report.passed:
            print(report.to_pandas())
    """

    def __init__(self, content: Mapping[str, Any]) -> None:
        self.content = dict(content)
        self.status: str = str(self.content.get("status", "passed"))
        self.passed: bool = self.status != "failed"
        self.trigger: str | None = self.content.get("trigger")
        self.commit_version: int | None = self.content.get("commit_version")
        self.validated_at: str | None = self.content.get("validated_at")
        self.rows: int = int(self.content.get("rows") or 0)
        self.results: list[dict[str, Any]] = [dict(r) for r in self.content.get("results", [])]

    def failures(self, level: str | None = None) -> list[dict[str, Any]]:
        """The failed checks (only those of ``level`` "error" or "warning" if given)."""
        return [r for r in self.results if not r["passed"] and (level is None or r["level"] == level)]

    @property
    def warnings(self) -> list[dict[str, Any]]:
        """The failed warning-level checks."""
        return self.failures("warning")

    def raise_for_status(self) -> ValidationReport:
        """Raise :class:`~cloudsdk.errors.ValidationFailedError` if an error-level check failed
        (e.g. to fail an Airflow task); else return the report.

        Raises:
            ValidationFailedError: the status is "failed".
        """
        if self.status == "failed":
            lines = [f"  - {r['rule']}: {r['message']}" for r in self.failures("error")]
            where = f" (commit {self.commit_version})" if self.commit_version is not None else ""
            raise ValidationFailedError("validation failed" + where + ":\n" + "\n".join(lines), self.content)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The report as a dict."""
        return dict(self.content)

    def to_pandas(self) -> Any:
        """One row per check: rule, rule_type, feature, value, min, max, level, passed, hint, message."""
        import pandas as pd

        return pd.DataFrame(self.results, columns=RESULT_COLUMNS)

    def __repr__(self) -> str:
        failed = len(self.failures())
        return (f"ValidationReport(status={self.status!r}, commit={self.commit_version}, "
                f"checks={len(self.results)}, failed={failed})")

    def _repr_html_(self) -> str:
        return str(self.to_pandas()._repr_html_())
