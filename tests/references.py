"""Independent reference implementations for the tests: plain Python loops over samples.

They are written from the definitions (and, for the peers, from the algorithm
descriptions in ``../shared/reference``), deliberately without calkit's engine,
vectorisation or tricks, so that the tests compare two different computations.
"""

from __future__ import annotations

import math

import numpy as np


def brute_bins(scores, targets, edges, closed="right"):
    """Per-bin (count, sum_score, sum_target) by a loop over samples and bins."""
    n_bins = len(edges) - 1
    count = [0] * n_bins
    ssum = [0.0] * n_bins
    tsum = [0.0] * n_bins
    for s, t in zip(scores.tolist(), targets.tolist(), strict=True):
        chosen = None
        for b in range(n_bins):
            lo, hi = edges[b], edges[b + 1]
            first, last = b == 0, b == n_bins - 1
            if closed == "right":
                inside = (s > lo or (first and s <= hi)) and (s <= hi or last)
            else:
                inside = (s >= lo or first) and (s < hi or (last and s >= lo))
            if inside:
                chosen = b
                break
        count[chosen] += 1
        ssum[chosen] += s
        tsum[chosen] += float(t)
    return np.array(count), np.array(ssum), np.array(tsum)


def brute_ece(scores, targets, edges, closed="right", norm="l1"):
    count, ssum, tsum = brute_bins(scores, targets, edges, closed)
    n = count.sum()
    gaps = [abs(s / c - t / c) for c, s, t in zip(count, ssum, tsum, strict=True) if c > 0]
    weights = [c / n for c in count if c > 0]
    if norm == "l1":
        return sum(w * g for w, g in zip(weights, gaps, strict=True))
    if norm == "l2":
        return math.sqrt(sum(w * g * g for w, g in zip(weights, gaps, strict=True)))
    return max(gaps)


def uc_equal_mass_bins(probs, num_bins):
    """uncertainty-calibration ``get_equal_bins``: upper boundaries (array_split midpoints)."""
    sorted_probs = sorted(probs)
    num_bins = min(num_bins, len(sorted_probs))
    parts = np.array_split(np.array(sorted_probs), num_bins)
    bins = []
    for i in range(num_bins - 1):
        bins.append((parts[i][-1] + parts[i + 1][0]) / 2.0)
    bins.append(1.0)
    return sorted(set(bins))


def uc_debiased_l2(probs, labels, upper_bins):
    """Kumar et al. debiased L2 CE on right-closed bins with the given upper boundaries."""
    groups = {}
    for p, y in zip(probs, labels, strict=True):
        b = int(np.searchsorted(upper_bins, p))  # (lo, hi]
        groups.setdefault(b, []).append((p, y))
    n = len(probs)
    total = 0.0
    for members in groups.values():
        nb = len(members)
        if nb < 2:
            continue
        pbar = sum(m[0] for m in members) / nb
        ybar = sum(m[1] for m in members) / nb
        total += nb / n * ((pbar - ybar) ** 2 - ybar * (1 - ybar) / (nb - 1))
    return math.sqrt(max(total, 0.0))


def caltrain_sweep(scores, targets, strategy="quantile", p=1):
    """google-research caltrain monotonic sweep, as described in the reference notes.

    O(b^2 N): re-bins from scratch for every b, exactly like the reference.
    """
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    n = len(scores)
    order = np.argsort(scores, kind="stable")

    def binned(b):
        bins = np.zeros(n, dtype=np.int64)
        if strategy == "quantile":
            bins[order] = np.minimum(b - 1, np.floor((np.arange(n) / n) * b)).astype(np.int64)
        else:
            bins = np.minimum(b - 1, np.floor(scores * b)).astype(np.int64)
        return bins

    def monotone(bins, b):
        last = -1.0
        for j in range(b):
            members = bins == j
            if members.sum() == 0:
                continue
            acc = targets[members].mean()
            if acc < last:
                return False
            last = acc
        return True

    prev = np.zeros(n, dtype=np.int64)
    chosen = prev
    for b in range(2, n):
        bins = binned(b)
        if not monotone(bins, b):
            chosen = prev
            break
        prev = bins
        chosen = bins
    total = 0.0
    for j in range(int(chosen.max()) + 1):
        members = chosen == j
        if members.sum() == 0:
            continue
        total += members.sum() * abs(targets[members].mean() - scores[members].mean()) ** p
    return (total / n) ** (1 / p), int(chosen.max()) + 1
