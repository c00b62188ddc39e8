#!/usr/bin/env python3
"""Reference values for cucn's metric tests, computed with scikit-learn and numpy.

Run from the repository root (needs Python 3 with numpy and scikit-learn):

    pip install numpy scikit-learn
    python3 scripts/gen_metric_fixtures.py

It writes tests/fixtures/metrics_sklearn.json, which tests/eval_metrics.rs and tests/eval_audit.rs
read. The cases are seeded, so rerunning reproduces the file; CI only reads it and never runs Python.
"""

import json
from pathlib import Path

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "metrics_sklearn.json"
RAFDB_TEST = np.array([329, 74, 160, 1185, 478, 162, 680], dtype=float)
ECE_BINS = 15


def labels_case(name, rng, num_classes, n, correct_rate, drop_pred=None, drop_true=None):
    weights = np.resize(RAFDB_TEST, num_classes)
    if drop_true is not None:
        weights[drop_true] = 0.0
    y_true = rng.choice(num_classes, size=n, p=weights / weights.sum())
    y_pred = np.where(rng.random(n) < correct_rate, y_true, rng.integers(0, num_classes, size=n))
    if drop_pred is not None:
        # Re-predict the dropped class as its neighbour so that it is never predicted.
        y_pred = np.where(y_pred == drop_pred, (drop_pred + 1) % num_classes, y_pred)
    labels = list(range(num_classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return {
        "name": name,
        "num_classes": num_classes,
        "y_true": y_true.tolist(),
        "y_pred": y_pred.tolist(),
        "accuracy": accuracy_score(y_true, y_pred),
        "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, average="macro", zero_division=0),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": support.tolist(),
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def ece_case(name, rng, num_classes, n, sharpness):
    """ECE with equal-width bins (lower, upper], as in Guo et al.'s reference code."""
    while True:
        probs = np.round(rng.dirichlet(np.full(num_classes, 1.0 / sharpness), size=n), 4)
        probs /= probs.sum(axis=1, keepdims=True)
        confidence = probs.max(axis=1)
        edges = np.linspace(0.0, 1.0, ECE_BINS + 1)
        # Keep confidences away from bin edges so float32/float64 rounding cannot move a sample.
        if np.abs(confidence[:, None] - edges[None, :]).min() > 1e-6:
            break
    predicted = probs.argmax(axis=1)
    y_true = np.where(rng.random(n) < confidence, predicted, rng.integers(0, num_classes, size=n))
    correct = predicted == y_true
    ece = 0.0
    for lower, upper in zip(edges[:-1], edges[1:]):
        in_bin = (confidence > lower) & (confidence <= upper)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return {
        "name": name,
        "num_classes": num_classes,
        "probs": probs.tolist(),
        "y_true": y_true.tolist(),
        "confidence": confidence.tolist(),
        "correct": correct.tolist(),
        "ece": ece,
    }


def ranking_case(name, rng, n, flip_rate, decimals, ks):
    positive = rng.random(n) < flip_rate
    scores = np.round(rng.normal(size=n) + 1.2 * positive, decimals)
    # Precision at k over the top-k by score, ties kept in input order (stable sort).
    order = np.argsort(-scores, kind="stable")
    return {
        "name": name,
        "scores": scores.tolist(),
        "positive": positive.tolist(),
        "auroc": roc_auc_score(positive, scores),
        "precision_at_k": [[k, float(positive[order[:k]].mean())] for k in ks],
    }


def distribution_case(name, rng, n, bins):
    values = np.round(rng.lognormal(mean=-1.0, sigma=0.6, size=n), 5)
    counts, edges = np.histogram(values, bins=bins)
    quantiles = [0.05, 0.25, 0.5, 0.75, 0.95]
    return {
        "name": name,
        "values": values.tolist(),
        "bins": bins,
        "mean": float(values.mean()),
        "std": float(values.std()),
        "quantiles": [[q, float(np.quantile(values, q))] for q in quantiles],
        "histogram_edges": edges.tolist(),
        "histogram_counts": counts.tolist(),
    }


def main():
    rng = np.random.default_rng(20221215)
    fixtures = {
        "classification": [
            labels_case("imbalanced_7", rng, 7, 300, 0.7),
            labels_case("never_predicted", rng, 7, 120, 0.5, drop_pred=1),
            labels_case("absent_from_truth", rng, 7, 90, 0.6, drop_true=6),
            labels_case("eight_classes", rng, 8, 150, 0.4),
        ],
        "ece": [
            ece_case("sharp", rng, 7, 200, 4.0),
            ece_case("flat", rng, 7, 150, 0.5),
        ],
        "ranking": [
            ranking_case("continuous", rng, 120, 0.2, 6, [1, 10, 24, 50, 500]),
            ranking_case("heavy_ties", rng, 100, 0.3, 0, [5, 30]),
        ],
        "distribution": [distribution_case("lognormal", rng, 257, 20)],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixtures, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
