"""The football example of the Hopsworks feature store docs, on the embedded store.

Usage: python examples/embedded/football.py [STORE_DIR]   (default: a new temporary directory;
run it again on the same STORE_DIR and it adds the next version of each feature group)

Writes four feature groups with the object API, reads them back with the query planner, a
query, SQL and the functional API, and writes a training dataset.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cloudsdk
from cloudsdk import featurestore
from cloudsdk.demo_data import generate_features


def main(store: Path) -> None:
    frames = generate_features(n_teams=60, players_per_team=10)

    # Object API: create the feature groups, keyed by team_id.
    with cloudsdk.connect(path=store) as conn:
        fs = conn.get_feature_store()
        for name, df in frames.items():
            fs.create_feature_group(name, data=df, primary_key=["team_id"], description=f"{name} of the demo")
            print(fs.get_feature_group(name))

        # The query planner joins features from several groups by name.
        features = fs.get_features(["team_id", "team_budget", "average_attendance", "average_player_rating"])
        print(features.sort_values("team_id").head(3).to_string(index=False))

        # A query with a join and a filter, written as a training dataset.
        teams = fs.get_feature_group("teams_features")
        players = fs.get_feature_group("players_features")
        query = (teams.select(["team_id", "team_budget", "team_position"])
                 .join(players.select(["average_player_age", "average_player_rating"]))
                 .filter(teams.team_budget > 1e8))
        td = query.create_training_dataset("rich_teams", data_format="parquet")
        print(td, "->", td.location)
        stats = teams.statistics()
        if stats is not None:
            print(stats.to_pandas()[["mean", "min", "max"]])

    # Functional API: the same store, seed-style.
    featurestore.connect(path=store)
    try:
        print(featurestore.get_featuregroups())
        print(featurestore.sql(
            "SELECT team_position, avg(average_attendance) AS attendance "
            "FROM teams_features JOIN attendances_features USING (team_id) "
            "GROUP BY team_position ORDER BY team_position LIMIT 3"))
        df = featurestore.get_features(["team_budget", "average_position", "team_position"])
        featurestore.create_training_dataset(df, "team_position_prediction", data_format="csv")
        print(featurestore.get_training_dataset_path("team_position_prediction"))
    finally:
        featurestore.disconnect()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
