"""A small, seeded generator of player activity, standing in for a real data source."""

import numpy as np

FEATURES = ["sessions", "days_since_last", "spend", "level"]


def generate(rows: int, seed: int):
    """Return (player_ids, features as an array, churned as bools)."""
    rng = np.random.default_rng(seed)
    sessions = rng.poisson(12, rows).astype(float)
    days = rng.exponential(6, rows)
    spend = rng.gamma(2.0, 10.0, rows)
    level = rng.integers(1, 60, rows).astype(float)
    X = np.column_stack([sessions, days, spend, level])
    logit = 0.25 * days - 0.15 * sessions - 0.02 * spend - 0.01 * level + 0.5
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    ids = [f"p{seed % 1000:03d}{i:07d}" for i in range(rows)]
    return ids, X, churned
