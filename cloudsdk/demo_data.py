"""Deterministic generator of the "football" demo data from the Hopsworks feature store docs.

The raw tables (teams, players, season scores, match attendances) are synthesised with a
single seeded ``numpy.random.Generator(PCG64(seed))`` and fully vectorised numpy code, so the
same arguments always give bit-identical frames. ``compute_features`` turns them into the four
feature groups of the docs (``teams_features``, ``players_features``, ``season_scores_features``
and ``attendances_features``), each keyed by ``team_id`` with one row per team; the label of the
``team_position_prediction`` training dataset is ``team_position``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

LEAGUE_SIZE = 20
_CITIES = np.array(
    "London Madrid Milan Munich Paris Lisbon Porto Lyon Turin Seville Dortmund Glasgow Amsterdam"
    " Rome Naples Valencia Hamburg Leeds Bristol Marseille Stockholm Oslo Vienna Prague Krakow"
    " Athens Zagreb Bilbao Bordeaux Genoa".split())
_SUFFIXES = np.array("FC United City Athletic Rovers Wanderers Sporting Olympic Real Dynamo Rangers"
                     " Albion Town Calcio SC".split())
_FIRST = np.array("Luca Marco Jan Pedro Tom Ali Erik Hugo Karim Leo Mats Noah Oscar Paul Rui"
                  " Sami Theo Viktor Yann Zlatan Bruno Diego Emil Felix Goran Ivan Joao Kai Liam"
                  " Mo".split())
_LAST = np.array("Silva Muller Rossi Garcia Smith Jansen Novak Dubois Costa Berg Kovac Lopez"
                 " Martin Nielsen Petrov Santos Schmidt Weber Fischer Moreau Bianchi Romero Larsen"
                 " Horvat".split())
_PLAYER_POSITIONS = np.array(["GK", "DF", "MF", "FW"])
_POSITION_WEIGHTS = np.array([0.1, 0.35, 0.35, 0.2])


def _logistic(x: np.ndarray) -> np.ndarray:
    """Map real values into (0, 1) with the logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def generate_raw(n_teams: int = 500, players_per_team: int = 40, n_seasons: int = 10,
                 matches_per_season: int = 38, seed: int = 42) -> dict[str, pd.DataFrame]:
    """Generate the raw teams, players, season_scores and attendances tables.

    Teams are numbered 1..n_teams; ``(team_id - 1) // 20`` defines a league of 20 teams whose
    season positions are a permutation of 1..20 (the last league may be smaller). A latent team
    ``quality`` drives player ratings and league results, and a ``popularity`` correlated with it
    drives match attendances (5k-80k) and, together with the squad's worth, the team budget.
    ``team_position`` is the team's position in the latest season (the prediction label).
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    team_id = np.arange(1, n_teams + 1, dtype=np.int64)
    quality = rng.standard_normal(n_teams)
    pop_z = 0.6 * quality + 0.8 * rng.standard_normal(n_teams)
    base_attendance = 5_000.0 * 16.0 ** _logistic(1.7 * pop_z)  # 5k .. 80k

    # Players: ages ~ N(26, 4) in 17..38, ratings 40..99 driven by team quality, lognormal worth.
    n_players = n_teams * players_per_team
    p_team = np.repeat(team_id, players_per_team)
    p_quality = np.repeat(quality, players_per_team)
    age = np.clip(np.rint(rng.normal(26.0, 4.0, n_players)), 17, 38).astype(np.int64)
    rating = np.clip(np.rint(68.0 + 7.0 * p_quality + rng.normal(0.0, 7.0, n_players)), 40, 99)
    rating = rating.astype(np.int64)
    log_worth = (np.log(2e6) + 0.09 * (rating - 68) - 0.015 * (age - 27) ** 2
                 + rng.normal(0.0, 0.6, n_players))
    worth = np.rint(np.clip(np.exp(log_worth), 1e5, 1e8) / 1e3) * 1e3
    first = _FIRST[rng.integers(0, len(_FIRST), n_players)]
    last = _LAST[rng.integers(0, len(_LAST), n_players)]
    position = _PLAYER_POSITIONS[rng.choice(len(_PLAYER_POSITIONS), n_players, p=_POSITION_WEIGHTS)]
    players = pd.DataFrame({
        "player_id": np.arange(1, n_players + 1, dtype=np.int64),
        "team_id": p_team,
        "player_name": pd.Series(first) + " " + pd.Series(last),
        "age": age, "rating": rating, "worth": worth, "position": position,
    })

    # Season scores: rank (strength + noise) within each (season, league) group.
    seasons = np.arange(2025 - n_seasons, 2025, dtype=np.int64)
    strength = quality + 0.3 * pop_z
    score = strength[None, :] + rng.normal(0.0, 0.7, (n_seasons, n_teams))
    league = (team_id - 1) // LEAGUE_SIZE
    group = (np.arange(n_seasons, dtype=np.int64)[:, None] * (league[-1] + 1 if n_teams else 0)
             + league[None, :]).ravel()
    order = np.lexsort((-score.ravel(), group))
    g_sorted = group[order]
    ranks = np.empty(order.size, dtype=np.int64)
    ranks[order] = np.arange(order.size) - np.searchsorted(g_sorted, g_sorted, side="left") + 1
    season_scores = pd.DataFrame({
        "team_id": np.tile(team_id, n_seasons),
        "season": np.repeat(seasons, n_teams),
        "position": ranks,
    }).sort_values(["team_id", "season"], kind="stable", ignore_index=True)

    # Attendances: per-match fraction of the team's base crowd, clipped to 5k..80k.
    n_rows = n_teams * n_seasons * matches_per_season
    fill = np.clip(rng.normal(0.9, 0.08, n_rows), 0.5, 1.0)
    attendance = np.clip(np.rint(np.repeat(base_attendance, n_seasons * matches_per_season) * fill),
                         5_000, 80_000).astype(np.int64)
    attendances = pd.DataFrame({
        "team_id": np.repeat(team_id, n_seasons * matches_per_season),
        "season": np.tile(np.repeat(seasons, matches_per_season), n_teams),
        "match": np.tile(np.arange(1, matches_per_season + 1, dtype=np.int64), n_teams * n_seasons),
        "attendance": attendance,
    })

    # Teams: budget correlated with squad worth and popularity; label = latest-season position.
    squad_worth = np.bincount(p_team - 1, weights=worth, minlength=n_teams)
    gate_receipts = base_attendance * 19 * 45.0 * 8.0  # 19 home games, 45 EUR tickets, 8 years
    budget = (0.3 * squad_worth + gate_receipts) * rng.lognormal(0.0, 0.15, n_teams)
    team_name = (pd.Series(_CITIES[rng.integers(0, len(_CITIES), n_teams)]) + " "
                 + pd.Series(_SUFFIXES[rng.integers(0, len(_SUFFIXES), n_teams)]))
    latest = ranks.reshape(n_seasons, n_teams)[-1] if n_seasons else np.zeros(n_teams, np.int64)
    teams = pd.DataFrame({"team_id": team_id, "team_name": team_name,
                          "team_budget": np.rint(budget / 1e3) * 1e3, "team_position": latest})
    return {"teams": teams, "players": players, "season_scores": season_scores,
            "attendances": attendances}


def _agg(df: pd.DataFrame, column: str, prefix: str) -> pd.DataFrame:
    """Return per-team ``average_<prefix>`` and ``sum_<prefix>`` of ``column`` as float64."""
    grouped = df[column].astype(np.float64).groupby(df["team_id"], sort=True)
    out = pd.DataFrame({f"average_{prefix}": grouped.mean(), f"sum_{prefix}": grouped.sum()})
    out.index = out.index.astype(np.int64)
    return out


def compute_features(raw: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Compute the four per-team feature groups of the docs from the raw tables."""
    teams = raw["teams"].sort_values("team_id", kind="stable", ignore_index=True)
    teams_features = pd.DataFrame({
        "team_id": teams["team_id"].to_numpy(np.int64),
        "team_budget": teams["team_budget"].to_numpy(np.float64),
        "team_position": teams["team_position"].to_numpy(np.int64),
    })
    players = raw["players"]
    p = pd.concat([_agg(players, "rating", "player_rating"), _agg(players, "age", "player_age"),
                   _agg(players, "worth", "player_worth")], axis=1)
    players_features = p[["average_player_rating", "average_player_age", "average_player_worth",
                          "sum_player_rating", "sum_player_age", "sum_player_worth"]]
    # Past seasons only: the latest season's position is the label (team_position), and a
    # feature computed from it would leak the label into training.
    scores = raw["season_scores"]
    past = scores[scores["season"] < scores["season"].max()] if scores["season"].nunique() > 1 else scores
    season = _agg(past, "position", "position").reindex(teams["team_id"].to_numpy(np.int64))
    attend = _agg(raw["attendances"], "attendance", "attendance")
    return {
        "teams_features": teams_features,
        "players_features": players_features.rename_axis("team_id").reset_index(),
        "season_scores_features": season.rename_axis("team_id").reset_index(),
        "attendances_features": attend.rename_axis("team_id").reset_index(),
    }


def generate_features(n_teams: int = 500, players_per_team: int = 40, seed: int = 42,
                      **kw: Any) -> dict[str, pd.DataFrame]:
    """Generate the raw football data and return its four feature groups."""
    return compute_features(generate_raw(n_teams=n_teams, players_per_team=players_per_team,
                                         seed=seed, **kw))


def scaled_feature_groups(n_rows: int, n_features: int = 10, n_groups: int = 4,
                          seed: int = 0) -> list[Any]:
    """Build ``n_groups`` pyarrow tables of ``n_rows`` random float64 features keyed by ``id``.

    Each table has an int64 ``id`` column holding a seeded permutation of ``0..n_rows-1`` (the
    affine bijection ``(a * i + b) mod n_rows`` with ``gcd(a, n_rows) == 1``, much cheaper than a
    full shuffle) and ``n_features`` uniform [0, 1) float64 columns named ``g{g}_f{i}``.
    Intended for benchmarks: 5M rows x 10 features x 4 groups is about 1.6 GB of float64.
    """
    import pyarrow as pa

    rng = np.random.Generator(np.random.PCG64(seed))
    index = np.arange(n_rows, dtype=np.int64)
    tables = []
    for g in range(n_groups):
        a, b = (1, 0) if n_rows < 2 else (int(rng.integers(1, n_rows)), int(rng.integers(n_rows)))
        while np.gcd(a, n_rows) != 1:
            a = int(rng.integers(1, n_rows))
        columns: dict[str, np.ndarray] = {"id": (index * a + b) % max(n_rows, 1)}
        for i in range(n_features):
            columns[f"g{g}_f{i}"] = rng.random(n_rows)
        tables.append(pa.table(columns))
    return tables
