"""``cloudsdk demo``: the feature store documentation's football example, end to end.

Builds four feature groups keyed by ``team_id`` from deterministic raw data (500 teams,
20,000 players, ten seasons), then reads them back the ways the manual shows: the query
planner, SQL, statistics, and a training dataset written as parquet.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO, TypeVar

import pandas as pd

from cloudsdk.client.connection import connect, default_home
from cloudsdk.demo_data import compute_features, generate_raw
from cloudsdk.errors import TrainingDatasetNotFoundError

T = TypeVar("T")

DEMO_FEATURES = [
    "team_budget", "average_attendance", "average_player_age", "team_position", "sum_attendance",
    "average_player_rating", "average_player_worth", "sum_player_age", "sum_player_rating",
    "sum_player_worth", "sum_position", "average_position",
]

SEED_SQL = """
SELECT team_budget, average_position, sum_player_rating,
average_attendance, average_player_worth, sum_player_worth,
sum_position, sum_attendance, average_player_rating,
team_position, sum_player_age, average_player_age
FROM teams_features_1
JOIN season_scores_features_1
JOIN players_features_1
JOIN attendances_features_1
ON teams_features_1.`team_id`=season_scores_features_1.`team_id`
AND teams_features_1.`team_id`=players_features_1.`team_id`
AND teams_features_1.`team_id`=attendances_features_1.`team_id`
"""

DESCRIPTIONS = {
    "teams_features": "budget and league position of each team",
    "players_features": "aggregates of each team's players: rating, age, worth",
    "season_scores_features": "league positions of each team over ten seasons",
    "attendances_features": "match attendances of each team over ten seasons",
}


class _Steps:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.n = 0
        self.start = time.perf_counter()

    def run(self, title: str, fn: Callable[[], T], rows: Callable[[T], int] | None = None) -> T:
        self.n += 1
        t0 = time.perf_counter()
        result = fn()
        dt = time.perf_counter() - t0
        count = f"{rows(result):>9,} rows" if rows else " " * 14
        print(f"[{self.n}] {title:<58} {count}  {dt:7.2f} s", file=self.out, flush=True)
        return result

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)


def run_demo(directory: str | Path | None = None, *, n_teams: int = 500, out: TextIO | None = None,
             progress: bool = True) -> dict[str, Any]:
    """Run the demo in ``directory`` (default: the embedded store, $CLOUDSDK_HOME or ~/.cloudsdk).

    Returns:
        What the demo computed: row counts, timings and the training dataset's path.
    """
    from tqdm.auto import tqdm

    out = out or sys.stdout
    root = Path(directory) if directory is not None else default_home()
    steps = _Steps(out)
    steps.say(f"cloudsdk demo: the football feature store in {root} (embedded, project 'default')")
    steps.say()
    conn = connect(path=root)
    try:
        fs = conn.get_feature_store()
        raw = steps.run(
            f"generate raw data ({n_teams} teams, {n_teams * 40:,} players)",
            lambda: generate_raw(n_teams=n_teams), lambda r: sum(len(df) for df in r.values()))
        frames = steps.run("compute the features of four feature groups", lambda: compute_features(raw),
                           lambda f: sum(len(df) for df in f.values()))

        def create_groups() -> int:
            total = 0
            bar = tqdm(frames.items(), desc="feature groups", unit="group", disable=not progress,
                       file=sys.stderr, leave=False)
            for name, df in bar:
                bar.set_postfix_str(name)
                for old in fs.get_feature_groups(name):
                    old.delete()
                fs.create_feature_group(name, 1, data=df, primary_key=["team_id"],
                                        description=DESCRIPTIONS[name])
                total += len(df)
            return total

        steps.run(f"create {len(frames)} feature groups keyed by team_id", create_groups, lambda n: n)
        for name in frames:
            steps.say(f"      {fs.get_feature_group(name, 1)!r}")

        features = steps.run(f"get_features: {len(DEMO_FEATURES)} features from 4 groups (query planner)",
                             lambda: fs.get_features(DEMO_FEATURES), len)
        steps.say(_indent(features.head(3).to_string(max_cols=6)))
        joined = steps.run("sql: the manual's Hive join over <name>_1 tables",
                           lambda: fs.sql(SEED_SQL), len)
        same = _same_rows(features, joined)
        steps.say(f"      same rows as get_features: {'yes' if same else 'NO'}")
        stats = steps.run("statistics of players_features",
                          lambda: fs.get_feature_group("players_features", 1).statistics(),
                          lambda s: s.row_count if s else 0)
        if stats is not None:
            steps.say(_indent(stats.to_pandas().to_string(float_format=lambda v: f"{v:,.2f}")))

        def training_dataset() -> Any:
            with contextlib.suppress(TrainingDatasetNotFoundError):
                fs.get_training_dataset("team_position_prediction", 1).delete()
            query = _planner_query(fs)
            return fs.create_training_dataset("team_position_prediction", query, version=1,
                                              data_format="parquet",
                                              description="predict a team's league position")

        td = steps.run("training dataset team_position_prediction (parquet)", training_dataset,
                       lambda t: t.row_count)
        files = sorted(p.name for p in Path(td.location).glob("part-r-*"))
        steps.say(f"      {td.location}/{{{', '.join(files)}}}")
        total = time.perf_counter() - steps.start
        steps.say()
        steps.say(f"done in {total:.1f} s. Try it yourself:")
        python = _short(sys.executable)
        steps.say(f'  {python} -c "from cloudsdk import featurestore; '
                  "print(featurestore.get_features(['team_budget', 'average_attendance']))\"")
        if directory is not None:
            steps.say(f"  (with CLOUDSDK_HOME={root})")
        return {"rows": len(features), "sql_rows": len(joined), "same_rows": same, "seconds": total,
                "training_dataset": td.location}
    finally:
        conn.close()


def _planner_query(fs: Any) -> Any:
    """The same 12 features as an object-API query, so the dataset records its provenance."""
    teams = fs.get_feature_group("teams_features", 1)
    query = teams.select(["team_id", "team_budget", "team_position"])
    for name in ("players_features", "season_scores_features", "attendances_features"):
        fg = fs.get_feature_group(name, 1)
        query = query.join(fg.select([f.name for f in fg.features if f.name != "team_id"]), on=["team_id"])
    return query


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    cols = sorted(a.columns)
    if sorted(b.columns) != cols:
        return False
    left = a[cols].sort_values(cols).reset_index(drop=True)
    right = b[cols].sort_values(cols).reset_index(drop=True)
    return bool(left.equals(right))


def _short(path: str) -> str:
    """``path`` relative to the working directory when it lies below it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())




__all__ = ["run_demo"]
