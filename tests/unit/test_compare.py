"""The paired comparison of two models on the same rows (DeLong's test)."""

from __future__ import annotations

import numpy as np
import pytest

from tabml.governance.compare import delong, paired_auc


def _direct(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's quantities straight from their definition, O(positives x negatives)."""
    y = y.astype(bool)
    aucs, v10s, v01s = [], [], []
    for s in scores:
        pos, neg = s[y], s[~y]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        v10s.append(psi.mean(axis=1))
        v01s.append(psi.mean(axis=0))
        aucs.append(psi.mean())
    v10, v01 = np.array(v10s), np.array(v01s)
    cov = np.cov(v10) / v10.shape[1] + np.cov(v01) / v01.shape[1]
    return np.array(aucs), cov


def _scores(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    signal = y + rng.normal(0, 1.2, n)
    a = np.round(signal + rng.normal(0, 0.6, n), 1)  # rounded: many ties
    b = np.round(signal + rng.normal(0, 0.3, n), 1)
    return y, a, b


def test_delong_equals_its_definition_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    y, a, b = _scores(600, 0)
    aucs, cov, _, _ = delong(y, np.vstack([a, b]))
    want_aucs, want_cov = _direct(y, np.vstack([a, b]))
    np.testing.assert_allclose(aucs, want_aucs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cov, want_cov, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(aucs, [roc_auc_score(y, a), roc_auc_score(y, b)], atol=1e-12)


def test_the_variance_of_the_difference_matches_a_seeded_paired_bootstrap() -> None:
    from sklearn.metrics import roc_auc_score

    y, a, b = _scores(1_500, 1)
    result = paired_auc(y, a, b)
    rng = np.random.default_rng(7)
    deltas = []
    for _ in range(400):
        i = rng.integers(0, len(y), len(y))
        deltas.append(roc_auc_score(y[i], b[i]) - roc_auc_score(y[i], a[i]))
    assert result.std_error == pytest.approx(np.std(deltas), rel=0.15)
    assert result.delta == pytest.approx(roc_auc_score(y, b) - roc_auc_score(y, a), abs=1e-12)


def test_verdicts() -> None:
    y, a, b = _scores(3_000, 2)
    better = paired_auc(y, a, b)  # b has less noise
    assert better.verdict == "better" and better.low > 0 and better.p_value < 0.05
    worse = paired_auc(y, b, a)
    assert worse.verdict == "worse" and worse.high < 0
    same = paired_auc(y, a, a.copy())
    assert same.verdict == "not distinguishable" and same.delta == 0 and same.p_value == 1.0
    with pytest.raises(ValueError, match="both classes"):
        paired_auc(np.ones(10), a[:10], b[:10])
