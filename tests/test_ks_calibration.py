"""KS calibration error (Gupta et al. 2021) and its cumulative-curve Display."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calkit.metrics import ks_calibration_error


def data_b():
    i = np.arange(1, 201)
    frac = lambda x: x - np.floor(x)  # noqa: E731
    p = 0.01 + 0.98 * frac(i * 0.6180339887498949)
    return (frac(i * 0.7548776662466927) < p ** 1.3).astype(int), p


def test_reference_value_b():
    y, p = data_b()    # spline-calibration's cal_metrics/KS.py on data set B
    assert ks_calibration_error(y, p, view="positive").value == pytest.approx(0.0757671762,
                                                                              abs=1e-10)


def _brute(z, y):
    """max over tie-run ends of |cumulative (z - y)| / N, by a loop."""
    order = np.argsort(z, kind="stable")
    best, acc = 0.0, 0.0
    for k, i in enumerate(order):
        acc += z[i] - y[i]
        if k == len(z) - 1 or z[order[k + 1]] != z[i]:
            best = max(best, abs(acc) / len(z))
    return best


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 200), st.integers(0, 10_000))
def test_brute_force_and_tie_order_invariance(n, seed):
    rng = np.random.default_rng(seed)
    p = np.round(rng.uniform(size=n), 1)
    y = (rng.uniform(size=n) < p).astype(int)
    r = ks_calibration_error(y, p, view="positive")
    assert r.value == pytest.approx(_brute(p, y), abs=1e-12)
    perm = rng.permutation(n)
    assert ks_calibration_error(y[perm], p[perm], view="positive").value == pytest.approx(
        r.value, abs=1e-12)


def test_top_label_rank_and_classwise():
    rng = np.random.default_rng(0)
    prob = rng.dirichlet(np.ones(4), size=800)
    y = rng.integers(0, 4, 800)
    top = ks_calibration_error(y, prob)
    assert top.value == pytest.approx(_brute(prob.max(1), (prob.argmax(1) == y) * 1.0))
    second = ks_calibration_error(y, prob, rank=2)
    cls = np.argsort(-prob, 1)[:, 1]
    assert second.value == pytest.approx(_brute(prob[np.arange(800), cls], (cls == y) * 1.0))
    cw = ks_calibration_error(y, prob, view="classwise")
    ref = [_brute(prob[:, k], (y == k) * 1.0) for k in range(4)]
    np.testing.assert_allclose(cw.per_class, ref, atol=1e-12)
    assert cw.value == pytest.approx(np.mean(ref))


@pytest.mark.parametrize("kwargs, match", [
    (dict(view="marginal"), "view"), (dict(rank=0), "rank"), (dict(rank=5), "rank"),
    (dict(rank=2, view="classwise"), "rank"), (dict(view="positive"), "binary")])
def test_bad_settings(kwargs, match):
    rng = np.random.default_rng(0)
    prob = rng.dirichlet(np.ones(4), size=50)
    with pytest.raises(ValueError, match=match):
        ks_calibration_error(rng.integers(0, 4, 50), prob, **kwargs)


def test_display_draws_the_gap():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from calkit.plotting import CumulativeCalibrationDisplay

    y, p = data_b()
    d = CumulativeCalibrationDisplay.from_predictions(y, p, view="positive", name="B")
    xs, ys = d.lines_["ks"].get_data()
    assert abs(ys[0] - ys[1]) == pytest.approx(d.result.value, abs=1e-12)
    assert "KS = 0.0758" in [t.get_text() for t in d.ax_.get_legend().get_texts()]
    import matplotlib.pyplot as plt

    plt.close(d.figure_)


def test_one_d_scores_need_their_view_said():
    y, p = data_b()
    with pytest.raises(ValueError, match="view='confidence'"):
        ks_calibration_error(y, p)
    assert ks_calibration_error(y, p, view="confidence").value == pytest.approx(
        ks_calibration_error(y, p, view="positive").value, rel=1e-12)
