"""calkit.integrations.torchmetrics against torchmetrics' own metrics and calkit's batch API."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tm = pytest.importorskip("torchmetrics")

import calkit  # noqa: E402
from calkit.integrations.torchmetrics import (  # noqa: E402
    BrierScore,
    CalibrationError,
    DebiasedCalibrationError,
    NegativeLogLikelihood,
)
from calkit.metrics.conventions import convention_error  # noqa: E402


def multiclass(n=6000, k=7, saturated=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g) * 3
    logits[:saturated, 0] = 120.0  # float32 softmax gives exactly 1.0
    y = torch.randint(0, k, (n,), generator=g)
    return torch.softmax(logits, 1), y


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_torchmetrics_convention_reproduces_multiclass_calibration_error(norm):
    p, y = multiclass()
    assert int((p.max(1).values == 1.0).sum()) == 300
    ours = CalibrationError(num_classes=7, norm=norm, convention="torchmetrics")
    ref = tm.classification.MulticlassCalibrationError(num_classes=7, norm=norm)
    for part in torch.split(torch.arange(len(y)), 1000):
        ours.update(p[part], y[part])
        ref.update(p[part], y[part])
    value = ours.compute()
    assert value.dtype == torch.float64
    # torchmetrics sums in float32: equal up to its rounding
    assert float(value) == pytest.approx(float(ref.compute()), rel=2e-6)
    exact = convention_error(y.numpy(), p.numpy(), "torchmetrics", norm=norm)
    assert float(value) == pytest.approx(float(exact), rel=1e-12)
    assert int(ours.count[-1]) == 300  # the extra bin of confidence 1.0 (torchmetrics#3510)


def test_default_convention_is_calkit_exact_and_puts_one_in_the_last_bin():
    p, y = multiclass()
    ours = CalibrationError(num_classes=7)
    ours.update(p, y)
    assert float(ours.compute()) == pytest.approx(calkit.ece(y.numpy(), p.numpy()), rel=1e-12,
                                                  abs=1e-15)
    assert ours.count.shape == (15,)
    conf = p.max(1).values.double().numpy()
    assert int(ours.count[-1]) == int((conf > 14 / 15).sum())  # (14/15, 1], 1.0 included


def test_binary_matches_binary_calibration_error_in_float64():
    g = torch.Generator().manual_seed(1)
    p = torch.rand(5000, generator=g, dtype=torch.float64)
    y = (torch.rand(5000, generator=g, dtype=torch.float64) < p ** 1.5).long()
    p[:40] = 1.0
    for norm in ("l1", "l2", "max"):
        ours = CalibrationError(task="binary", norm=norm, n_bins=10, convention="torchmetrics")
        ref = tm.classification.BinaryCalibrationError(n_bins=10, norm=norm)
        ours.update(p, y)
        ref.update(p, y)
        assert float(ours.compute()) == pytest.approx(float(ref.compute()), rel=1e-12)
    default = CalibrationError(task="binary", n_bins=10)
    default.update(p, y)
    expected = calkit.ece(y.numpy(), p.numpy(), n_bins=10, view="positive")
    assert float(default.compute()) == pytest.approx(expected, rel=1e-12)


def test_logits_are_detected_like_torchmetrics_and_ignore_index_drops_tokens():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(8, 5, 12, generator=g) * 2  # (batch, classes, sequence)
    y = torch.randint(0, 5, (8, 12), generator=g)
    y[:, 9:] = -100
    ours = CalibrationError(num_classes=5, n_bins=6, ignore_index=-100,
                            convention="torchmetrics")
    ref = tm.classification.MulticlassCalibrationError(num_classes=5, n_bins=6,
                                                       ignore_index=-100)
    ours.update(logits, y)
    ref.update(logits, y)
    assert float(ours.compute()) == pytest.approx(float(ref.compute()), rel=2e-6)
    assert int(ours.count.sum()) == 8 * 9
    default = CalibrationError(num_classes=5, n_bins=6, ignore_index=-100, from_logits=True)
    default.update(logits, y)
    flat_p = torch.softmax(logits, 1).movedim(1, -1)[:, :9].reshape(-1, 5)
    expected = calkit.ece(y[:, :9].reshape(-1).numpy(), flat_p.numpy(), n_bins=6)
    assert float(default.compute()) == pytest.approx(expected, rel=1e-12)


def test_merge_state_equals_one_update_and_states_are_fixed_size_sums():
    p, y = multiclass(n=3000)
    whole = CalibrationError(num_classes=7)
    whole.update(p, y)
    left, right = CalibrationError(num_classes=7), CalibrationError(num_classes=7)
    left.update(p[:1234], y[:1234])
    right.update(p[1234:], y[1234:])
    left.merge_state(right)
    assert float(left.compute()) == pytest.approx(float(whole.compute()), rel=1e-14)
    assert torch.equal(left.count, whole.count)
    assert {name: tuple(v.shape) for name, v in whole.metric_state.items()} == {
        "count": (15,), "sum_score": (15,), "sum_target": (15,), "brier": (), "nll": ()}
    assert all(fx is tm.utilities.dim_zero_sum for fx in whole._reductions.values())
    whole.reset()
    with pytest.raises(ValueError, match="no samples"):
        whole.compute()


def test_metric_collection_shares_one_update_and_matches_calkit():
    p, y = multiclass(n=4000, saturated=0)
    mc = tm.MetricCollection({"ece": CalibrationError(num_classes=7),
                              "mce": CalibrationError(num_classes=7, norm="max"),
                              "debiased": DebiasedCalibrationError(num_classes=7),
                              "brier": BrierScore(num_classes=7),
                              "nll": NegativeLogLikelihood(num_classes=7)})
    mc.update(p[:100], y[:100])
    mc.update(p[100:], y[100:])
    out = {k: float(v) for k, v in mc.compute().items()}
    yn, pn = y.numpy(), p.numpy()
    expected = {"ece": calkit.ece(yn, pn), "mce": calkit.ece(yn, pn, norm="max"),
                "debiased": calkit.debiased_ece(yn, pn, strategy="uniform"),
                "brier": calkit.brier_score(yn, pn), "nll": calkit.nll(yn, pn)}
    assert out == pytest.approx(expected, rel=1e-12)
    groups = sorted(sorted(g) for g in mc.compute_groups.values())
    assert groups == [["brier", "nll"], ["debiased", "ece", "mce"]]


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="task"):
        CalibrationError(task="multilabel", num_classes=3)
    with pytest.raises(ValueError, match="num_classes"):
        CalibrationError(task="multiclass")
    with pytest.raises(ValueError, match="norm"):
        CalibrationError(num_classes=3, norm="l3")
    with pytest.raises(ValueError, match="from_logits"):
        CalibrationError(num_classes=3, convention="torchmetrics", from_logits=True)
    with pytest.raises(ValueError, match="convention"):
        DebiasedCalibrationError(num_classes=3, convention="torchmetrics")
    with pytest.raises(TypeError, match="unexpected"):
        CalibrationError(num_classes=3, strategy="quantile")
    metric = CalibrationError(num_classes=3)
    with pytest.raises(ValueError, match=r"shape \(N, 3"):
        metric.update(torch.rand(4, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="logits"):  # logits without from_logits
        metric.update(torch.randn(4, 3) * 5, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="floating"):
        metric.update(torch.ones(4, 3, dtype=torch.long), torch.zeros(4, dtype=torch.long))


def test_float64_sums_where_torchmetrics_float32_drifts():
    """400k identical-confidence samples: float32 sums drift, float64 sums stay exact."""
    n = 400_000
    p = torch.full((n,), 0.7, dtype=torch.float32)
    y = torch.zeros(n, dtype=torch.long)
    y[: int(0.3 * n)] = 1
    ref = tm.classification.BinaryCalibrationError(n_bins=10)
    ours = CalibrationError(task="binary", n_bins=10, convention="torchmetrics")
    ref.update(p, y)
    ours.update(p, y)
    exact = abs(float(np.float32(0.7)) - 0.3)
    assert float(ours.compute()) == pytest.approx(exact, rel=1e-12)
    assert abs(float(ref.compute()) - exact) > 1e-7  # float32 drift


hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


@hypothesis.settings(max_examples=10, deadline=None)
@hypothesis.given(cuts=st.lists(st.integers(0, 500), max_size=4),
                  convention=st.sampled_from(["calkit", "torchmetrics"]))
def test_any_split_merges_to_the_same_state(cuts, convention):
    p, y = multiclass(n=500, k=4, saturated=20, seed=9)
    whole = CalibrationError(num_classes=4, n_bins=7, convention=convention)
    whole.update(p, y)
    bounds = [0, *sorted(cuts), 500]
    merged = CalibrationError(num_classes=4, n_bins=7, convention=convention)
    merged.update(p[:bounds[1]], y[:bounds[1]])
    for a, b in zip(bounds[1:-1], bounds[2:], strict=True):
        part = CalibrationError(num_classes=4, n_bins=7, convention=convention)
        part.update(p[a:b], y[a:b])
        merged.merge_state(part)
    assert torch.equal(merged.count, whole.count)
    torch.testing.assert_close(merged.sum_score, whole.sum_score, rtol=1e-14, atol=1e-12)
    assert float(merged.compute()) == pytest.approx(float(whole.compute()), rel=1e-12)
