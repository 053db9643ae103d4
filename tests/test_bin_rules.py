"""Bin-count rules (n_bins="sqrt", "cube_root", "rice", "sturges", "sweep") and Nixon et al.'s
SCE / ACE / TACE against an independent transcription of robustness_metrics' engine."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calkit import calibration_error, debiased_ece, ece, sweep_ece
from calkit._bin_rules import BIN_RULES, ceil_cbrt, ceil_sqrt, rule_n_bins
from calkit.binning import bin_table, resolve_n_bins
from calkit.metrics import ace, sce, tace

RULES = tuple(BIN_RULES)


def _brute_rule(rule: str, n: int) -> int:
    """Smallest m >= 1 whose defining inequality holds, by counting up (exact integers)."""
    test = {"sqrt": lambda m: m * m >= n, "cube_root": lambda m: m ** 3 >= n,
            "rice": lambda m: m ** 3 >= 8 * n, "sturges": lambda m: 2 ** (m - 1) >= n}[rule]
    m = 1
    while not test(m):
        m += 1
    return min(m, n)


# ------------------------------------------------------------------------------ exact rules

def test_cube_root_is_exact_on_every_perfect_cube_up_to_2e5():
    cubes = [k ** 3 for k in range(1, 59) if k ** 3 <= 200_000]
    assert len(cubes) == 58
    # np.cbrt(27) is 3.0000000000000004 with some libm builds (3.0 with others), so
    # ceil(np.cbrt(n)) may round a perfect cube up; the integer root never does
    for k, c in enumerate(cubes, start=1):
        assert ceil_cbrt(c) == k
        assert rule_n_bins("cube_root", c) == k
        assert ceil_cbrt(c + 1) == k + 1
        assert ceil_cbrt(c - 1) == (k if c > 1 else 0)


def test_rules_on_small_n_and_the_documented_cases():
    assert rule_n_bins("cube_root", 2) == 2  # scikit-learn PR #33856's test case
    assert rule_n_bins("cube_root", 1) == 1
    assert [rule_n_bins("sqrt", n) for n in (1, 2, 4, 5, 9, 10)] == [1, 2, 2, 3, 3, 4]
    assert [rule_n_bins("rice", n) for n in (1, 2, 3, 27, 1000)] == [1, 2, 3, 6, 20]
    assert [rule_n_bins("sturges", n) for n in (1, 2, 3, 4, 5, 1024, 1025)] == \
        [1, 2, 3, 3, 4, 11, 12]


def test_sqrt_is_exact_on_perfect_squares():
    for k in range(1, 2000):
        assert ceil_sqrt(k * k) == k and ceil_sqrt(k * k + 1) == k + 1
        assert rule_n_bins("sqrt", k * k) == k


@pytest.mark.parametrize("rule", RULES)
def test_rules_match_a_brute_force_count_up(rule):
    for n in list(range(1, 3000)) + [8000, 27_000, 27_001, 199_999, 200_000]:
        assert rule_n_bins(rule, n) == _brute_rule(rule, n), n


def test_rules_match_numpy_float_formulas_away_from_exact_roots():
    # numpy's histogram rules in floating point agree wherever no exact root is involved
    for n in (10, 99, 1001, 12_345, 99_999):
        assert rule_n_bins("sqrt", n) == math.ceil(np.sqrt(n))
        assert rule_n_bins("sturges", n) == math.ceil(np.log2(n) + 1)
        assert rule_n_bins("rice", n) == math.ceil(2 * n ** (1 / 3))


@settings(max_examples=200, deadline=None)
@given(rule=st.sampled_from(RULES), n=st.integers(1, 10 ** 12))
def test_resolved_number_is_between_1_and_n(rule, n):
    b = rule_n_bins(rule, n)
    assert 1 <= b <= n
    if rule == "cube_root":
        assert b ** 3 >= n and (b - 1) ** 3 < n


def test_bad_rule_names_are_listed_in_the_error():
    for bad in ("auto", "Sqrt", "cbrt", ""):
        with pytest.raises(ValueError, match="cube_root.*rice.*sqrt.*sturges"):
            resolve_n_bins(bad, 100)
        with pytest.raises(ValueError, match="n_bins"):
            ece([0, 1, 1, 0], np.array([0.2, 0.6, 0.7, 0.9]), n_bins=bad, view="positive")
    with pytest.raises(ValueError, match="at least one sample"):
        rule_n_bins("sqrt", 0)


def test_weighted_rule_counts_samples_with_positive_weight():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=200)
    y = (rng.uniform(size=200) < p).astype(int)
    w = np.where(np.arange(200) < 64, 1.0, 0.0)  # 64 samples with weight
    r = calibration_error(y, p, n_bins="sqrt", view="positive", sample_weight=w)
    assert r.settings["n_bins"] == 8 and r.settings["n_bins_rule"] == "sqrt"
    ref = calibration_error(y[:64], p[:64], n_bins=8, view="positive")
    assert float(r) == pytest.approx(float(ref), abs=1e-15)
    assert bin_table(p, y, n_bins="sqrt", sample_weight=w).n_bins == 8


# ------------------------------------------------------------------ rules through the metrics

@pytest.fixture(scope="module")
def multiclass():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1000, 5)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(5, p=row ** 1.5 / (row ** 1.5).sum()) for row in p])
    return y, p


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("view", ["top_label", "classwise"])
def test_results_record_the_rule_and_the_number(multiclass, rule, view):
    y, p = multiclass
    b = _brute_rule(rule, 1000)  # classwise: each class bins all N = 1000 rows
    for strategy in ("uniform", "quantile"):
        r = calibration_error(y, p, n_bins=rule, view=view, strategy=strategy)
        assert r.settings["n_bins"] == b and r.settings["n_bins_rule"] == rule
        assert all(t.n_bins == b for t in r.tables)
        assert float(r) == float(calibration_error(y, p, n_bins=b, view=view,
                                                   strategy=strategy))
        assert f"{b} {strategy} bins by {rule}" in r.describe()
    assert ece(y, p, n_bins=rule, view=view) == float(calibration_error(y, p, n_bins=b,
                                                                         view=view))
    assert float(debiased_ece(y, p, n_bins=rule, view=view)) == float(
        debiased_ece(y, p, n_bins=b, view=view))
    assert "n_bins_rule" not in calibration_error(y, p, n_bins=b, view=view).settings


def test_sweep_delegates_to_sweep_ece_and_records_b(multiclass):
    y, p = multiclass
    for strategy in ("quantile", "uniform"):
        for norm in ("l1", "l2"):
            r = calibration_error(y, p, n_bins="sweep", strategy=strategy, norm=norm)
            ref = sweep_ece(y, p, strategy=strategy, norm=norm)
            assert float(r) == float(ref)
            assert r.settings["n_bins"] == ref.settings["n_bins"] == r.table.n_bins >= 2
            assert r.settings["n_bins_rule"] == "sweep"
            assert r.settings["strategy"] == ref.settings["strategy"]
    conf = p.max(1)
    right = (p.argmax(1) == y).astype(int)
    assert float(ece(right, conf, n_bins="sweep", strategy="quantile", view="confidence")) == \
        float(sweep_ece(right, conf, view="confidence"))


def test_sweep_refuses_what_it_cannot_do(multiclass):
    y, p = multiclass
    with pytest.raises(ValueError, match="classwise"):
        calibration_error(y, p, n_bins="sweep", view="classwise")
    with pytest.raises(ValueError, match="sample_weight"):
        calibration_error(y, p, n_bins="sweep", sample_weight=np.ones(len(y)))


def test_rules_reach_the_reliability_diagram(multiclass):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from calkit.plotting import ReliabilityDisplay

    y, p = multiclass
    disp = ReliabilityDisplay.from_predictions(y, p, n_bins="cube_root")
    assert disp.table.n_bins == 10 and disp.settings["n_bins_rule"] == "cube_root"
    assert "10 uniform bins by cube_root" in disp.ax_.get_title()
    matplotlib.pyplot.close(disp.figure_)


def test_fixed_bin_places_refuse_rules_with_a_clear_message():
    from calkit.stream import CalibrationAccumulator

    with pytest.raises(ValueError, match="n_bins must be a positive integer here.*resolve_n_bins"):
        CalibrationAccumulator(n_bins="sqrt")
    with pytest.raises(ValueError, match="sweep"):
        CalibrationAccumulator(n_bins="sweep")
    from calkit.binning import uniform_edges

    with pytest.raises(ValueError, match="taken by calibration_error.*resolve_n_bins"):
        uniform_edges("cube_root")


def _calls_with_n_bins():
    """Every public function / constructor / classmethod of calkit that takes ``n_bins``."""
    import importlib
    import inspect

    found = {}
    for name in ("calkit.binning", "calkit.metrics", "calkit.posthoc", "calkit.plotting",
                 "calkit.stream", "calkit.distributed", "calkit.report", "calkit.training"):
        try:
            module = importlib.import_module(name)
        except ImportError:  # an optional dependency is missing
            continue
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr)
            members = [(attr, obj)]
            if inspect.isclass(obj):
                members = [(attr, obj.__init__)] + [
                    (f"{attr}.{k}", v.__func__) for k, v in vars(obj).items()
                    if isinstance(v, classmethod)]
            for label, f in members:
                try:
                    params = inspect.signature(f).parameters
                except (TypeError, ValueError):
                    continue
                if "n_bins" in params:
                    found[label] = f
    return found


def test_every_n_bins_argument_takes_a_rule_or_refuses_it_clearly():
    pd = pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from calkit import binning, metrics, plotting, posthoc, report
    from calkit.stream import CalibrationAccumulator

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 3)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = rng.integers(0, 3, 300)
    pb = rng.uniform(size=300)
    yb = (rng.uniform(size=300) < pb).astype(int)
    table = pd.DataFrame({"conf": pb, "correct": yb})
    pm = rng.uniform(size=(300, 4))  # multilabel: 4 labels, cube_root of the 300 rows
    ym = (rng.uniform(size=(300, 4)) < pm).astype(int)
    b = 7  # cube_root of 300
    accepts = {  # call -> the result, whose settings must record the rule and the number
        "calibration_error": lambda nb: metrics.calibration_error(y, p, n_bins=nb),
        "convention_error": lambda nb: metrics.convention_error(y, p, "netcal", n_bins=nb),
        "signed_ece": lambda nb: metrics.signed_ece(y, p, n_bins=nb),
        "brier_decomposition": lambda nb: metrics.brier_decomposition(yb, pb, n_bins=nb,
                                                                      view="positive"),
        "ace": lambda nb: metrics.ace(y, p, n_bins=nb),
        "sce": lambda nb: metrics.sce(y, p, n_bins=nb),
        "tace": lambda nb: metrics.tace(y, p, n_bins=nb),
        "summarize": lambda nb: report.summarize(y, p, n_bins=nb),
        "ReliabilityDisplay.from_predictions":
            lambda nb: plotting.ReliabilityDisplay.from_predictions(y, p, n_bins=nb),
        "ReliabilityDisplay.from_classwise":
            lambda nb: plotting.ReliabilityDisplay.from_classwise(y, p, n_bins=nb),
        "multilabel_calibration_error":
            lambda nb: metrics.multilabel_calibration_error(ym, pm, n_bins=nb),
        "plot_multilabel_reliability":
            lambda nb: plotting.plot_multilabel_reliability(ym, pm, n_bins=nb).result_,
    }
    numbers = {  # accepted; the number shows in what comes back
        "ece": lambda nb: metrics.ece(y, p, n_bins=nb) == metrics.ece(y, p, n_bins=b),
        "multilabel_ece": lambda nb: metrics.multilabel_ece(ym, pm, n_bins=nb, average="micro")
            == metrics.multilabel_ece(ym, pm, n_bins=b, average="micro"),
        "debiased_ece": lambda nb: metrics.debiased_ece(y, p, n_bins=nb) ==
            metrics.debiased_ece(y, p, n_bins=b),
        "bin_table": lambda nb: binning.bin_table(pb, yb, n_bins=nb).n_bins == b,
        "resolve_n_bins": lambda nb: resolve_n_bins(nb, 300) == (b, "cube_root"),
        "ConfidenceHistogramDisplay.from_predictions": lambda nb: plotting.
            ConfidenceHistogramDisplay.from_predictions(y, p, n_bins=nb).table.n_bins == b,
        "evaluation_figures": lambda nb: len(plotting.evaluation_figures(
            y, p, n_bins=nb, smooth=False)) > 0,
        "metric_specs": lambda nb: report.metric_specs(n_bins=nb)["ece_uniform"][1][
            "n_bins"] == nb,
    }
    refuses = {  # bins fixed before the data, per group, or a method of its own
        "debiased_plugin_ece": lambda nb: metrics.debiased_plugin_ece(y, p, n_bins=nb),
        "grouped_calibration": lambda nb: metrics.grouped_calibration(
            table, confidence="conf", correct="correct", n_bins=nb),
        "consistency_band": lambda nb: metrics.consistency_band(pb, n_bins=nb),
        "consistency_test": lambda nb: metrics.consistency_test(y, p, n_bins=nb),
        "HistogramBinning": lambda nb: posthoc.HistogramBinning(n_bins=nb).fit(pb, yb),
        "ScalingBinning": lambda nb: posthoc.ScalingBinning(n_bins=nb).fit(pb, yb),
        "CalibrationAccumulator": lambda nb: CalibrationAccumulator(n_bins=nb),
        "uniform_edges": lambda nb: binning.uniform_edges(nb),
        "quantile_edges": lambda nb: binning.quantile_edges(pb, nb),
        "weighted_quantile_edges": lambda nb: binning.weighted_quantile_edges(pb, np.ones(300),
                                                                              nb),
        "check_n_bins": lambda nb: binning.check_n_bins(nb),
    }
    try:  # torch-only classes
        from calkit.distributed import CalibrationMetric
        from calkit.training import AdaFocalLoss, CalFocalLoss
    except ImportError:
        pass
    else:
        refuses["AdaFocalLoss"] = lambda nb: AdaFocalLoss(n_bins=nb)
        refuses["CalFocalLoss"] = lambda nb: CalFocalLoss(n_bins=nb)
        refuses["CalibrationMetric"] = lambda nb: CalibrationMetric(n_bins=nb)
    listed = set(accepts) | set(numbers) | set(refuses)
    missing = set(_calls_with_n_bins()) - listed
    assert not missing, f"new n_bins arguments to classify here: {sorted(missing)}"
    for name, call in accepts.items():
        settings = call("cube_root").settings
        assert settings["n_bins"] == b and settings["n_bins_rule"] == "cube_root", name
    for name, call in numbers.items():
        assert call("cube_root"), name
    plt.close("all")
    for name, call in refuses.items():
        with pytest.raises(ValueError, match="n_bins") as info:
            call("cube_root")
        assert "cube_root" in str(info.value), name


def test_report_summary_resolves_once_and_records_both():
    from calkit.datasets import load_example
    from calkit.logits import softmax
    from calkit.report import format_table, summarize

    logits, labels = load_example()
    probs = softmax(logits)
    s = summarize(labels, probs, n_bins="cube_root")  # N = 2000 -> 13
    assert s.settings["n_bins"] == 13 and s.settings["n_bins_rule"] == "cube_root"
    assert s.tables["uniform"].n_bins == 13
    assert s.metrics["ece_uniform"] == ece(labels, probs, n_bins=13)
    assert "13 equal-width bins" in format_table(s)
    with pytest.raises(ValueError, match="sweep"):
        summarize(labels, probs, n_bins="sweep")


def test_cli_evaluate_takes_a_rule_and_prints_the_number(capsys):
    from calkit.cli import main

    assert main(["evaluate", "--example", "--n-bins", "sqrt", "--no-plots"]) == 0
    out, err = capsys.readouterr()
    assert "--n-bins sqrt: 45 bins" in err  # ceil(sqrt(2000)) = 45
    assert "45 equal-width bins" in out
    assert main(["evaluate", "--example", "--n-bins", "auto"]) == 2
    assert "rule (sqrt, cube_root, rice, sturges), got 'auto'" in capsys.readouterr().err
    assert main(["evaluate", "--example", "--n-bins", "0"]) == 2
    assert "must be a positive integer, got '0'" in capsys.readouterr().err


# ------------------------------------------------ Nixon et al. (robustness_metrics conventions)

def _rm_adaptive_upper(p, num_bins):
    """robustness_metrics ``_get_adaptive_bins`` (transcribed): upper edges, last 1.0."""
    if p.size == 0:
        return np.linspace(0, 1, num_bins + 1)[1:]
    idx = np.round(np.linspace(0, p.size, num_bins, endpoint=False)).astype(int)
    idx = np.minimum(idx, p.size - 1)
    edges = np.sort(p)[idx]
    return np.concatenate((edges[1:], [1.0]))


def _rm_gce(labels, probs, scheme, num_bins=30, threshold=0.0, norm="l1"):
    """robustness_metrics ``GeneralCalibrationError`` engine, class_conditional=True,
    max_prob=False (transcribed from uncertainty.py l.1464-1640: digitize on upper edges,
    bincount with float-eps counts, weights counts / kept, each class / K)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim == 1:
        probs = np.array([[1 - q, q] for q in probs])
    k_classes = probs.shape[1]
    onehot = np.eye(k_classes)[labels]
    total = 0.0
    for j in range(k_classes):
        p, lab = probs[:, j], onehot[:, j]
        lab, p = lab[p > threshold], p[p > threshold]
        if scheme == "adaptive":
            upper = _rm_adaptive_upper(p, num_bins)
        else:
            upper = np.histogram_bin_edges([], bins=num_bins, range=(0.0, 1.0))[1:]
        if p.size == 0:
            err = 0.0
        else:
            idx = np.digitize(p, upper)
            sums = np.bincount(idx, weights=p, minlength=num_bins).astype(np.float64)
            counts = np.bincount(idx, minlength=num_bins) + np.finfo(np.float64).eps
            conf = sums / counts
            acc = np.bincount(idx, weights=lab, minlength=num_bins) / counts
            gap = acc - conf
            gap = gap if norm == "l1" else gap ** 2
            err = np.sum(np.abs(gap * counts / float(p.size)))
        total += err / k_classes
    return float(np.sqrt(total) if norm == "l2" else total)


def _loop_definition(labels, probs, scheme, n_bins, threshold):
    """Section 11's definitions by plain loops: per class, keep p > eps, form B bins
    (equal-width, or equal-mass ranges of the sorted kept values), sum (n_b/N_k)|acc - conf|,
    average over classes.  Ranges follow robustness_metrics' rounded ranks, ties kept
    together; a probability of exactly 1.0 has its own bin."""
    probs = np.asarray(probs, dtype=np.float64)
    k_classes = probs.shape[1]
    total = 0.0
    for k in range(k_classes):
        pairs = [(probs[i, k], labels[i] == k) for i in range(len(labels))
                 if probs[i, k] > threshold]
        if not pairs:
            continue
        values = sorted(v for v, _ in pairs)
        if scheme == "uniform":
            lower = [j / n_bins for j in range(n_bins)]
        else:
            n_k = len(values)
            lower = []
            for j in range(n_bins):
                x = j * n_k / n_bins
                r = math.floor(x)
                r = r + 1 if x - r > 0.5 or (x - r == 0.5 and r % 2 == 1) else r
                lower.append(values[min(r, n_k - 1)])
        err = 0.0
        for b in range(n_bins + 1):
            if b < n_bins:
                lo = 0.0 if b == 0 else lower[b]
                hi = lower[b + 1] if b + 1 < n_bins else 1.0
                members = [(v, t) for v, t in pairs if lo <= v < hi]
            else:
                members = [(v, t) for v, t in pairs if v >= 1.0]
            if members:
                conf = sum(v for v, _ in members) / len(members)
                acc = sum(t for _, t in members) / len(members)
                err += len(members) / len(pairs) * abs(acc - conf)
        total += err / k_classes
    return total


@pytest.fixture(scope="module")
def nixon_data():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(600, 6)) * 3
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    p = np.round(p, 3)  # ties and exact zeros, as in saved outputs
    p[:5] = np.eye(6)[:5]  # exact 0.0 and 1.0 probabilities
    p = p / p.sum(1, keepdims=True)
    y = np.array([rng.choice(6, p=row) for row in p])
    return y, p


@pytest.mark.parametrize("n_bins", [30, 7, 15])
def test_sce_ace_tace_match_robustness_metrics_engine(nixon_data, n_bins):
    y, p = nixon_data
    for func, scheme, eps in ((sce, "even", 0.0), (ace, "adaptive", 0.0),
                              (tace, "adaptive", 0.01)):
        for norm in ("l1", "l2"):
            r = func(y, p, n_bins=n_bins, norm=norm)
            ref = _rm_gce(y, p, scheme, n_bins, eps, norm)
            assert float(r) == pytest.approx(ref, rel=1e-12, abs=1e-14), (func, norm)
        assert r.settings["threshold"] == eps and r.settings["n_bins"] == n_bins


@pytest.mark.parametrize("n_bins", [30, 4])
def test_sce_ace_tace_match_the_loop_definitions(nixon_data, n_bins):
    y, p = nixon_data
    y, p = y[:200], p[:200]
    assert float(sce(y, p, n_bins=n_bins)) == pytest.approx(
        _loop_definition(y, p, "uniform", n_bins, 0.0), abs=1e-13)
    assert float(ace(y, p, n_bins=n_bins)) == pytest.approx(
        _loop_definition(y, p, "adaptive", n_bins, 0.0), abs=1e-13)
    assert float(tace(y, p, n_bins=n_bins, threshold=0.05)) == pytest.approx(
        _loop_definition(y, p, "adaptive", n_bins, 0.05), abs=1e-13)


def test_tace_applies_its_threshold_unlike_the_registered_preset(nixon_data):
    y, p = nixon_data
    t, a = tace(y, p), ace(y, p)
    assert float(t) != float(a)  # robustness_metrics' registered tace would equal ace here
    assert float(t) == pytest.approx(_rm_gce(y, p, "adaptive", 30, 0.01), rel=1e-12)
    assert float(ace(y, p, threshold=0.01)) == float(t)
    assert all(k < len(y) for k in t.settings["kept"])
    assert t.settings["kept"] == [int(np.sum(p[:, k] > 0.01)) for k in range(6)]


def test_nixon_hand_computed_binary_case():
    # 1-D binary p -> columns [1 - p, p]; 2 equal-width bins [0, .5), [.5, 1) and one for 1.0
    y = np.array([0, 1, 1, 0])
    p = np.array([0.2, 0.6, 1.0, 0.5])
    # class 1: p = .2 (y 0) | .6, .5 (y 1, 0) | 1.0 (y 1): (.2 + |1 - 1.1| + 0) / 4 = .075
    # class 0: 1 - p = .8 (y 1), .4 (y 0), 0.0 dropped (> 0), .5 (y 1):
    #          bin [0,.5): .4 vs 0 -> .4; bin [.5,1): .8,.5 vs 2 -> .7; over N_0 = 3 -> 1.1/3
    r = sce(y, p, n_bins=2)
    assert float(r) == pytest.approx((1.1 / 3 + 0.075) / 2, abs=1e-15)
    assert r.settings["kept"] == [3, 4] and r.tables[1].count.tolist() == [1, 2, 1]


def test_nixon_rules_and_bad_input(nixon_data):
    y, p = nixon_data
    r = ace(y, p, n_bins="sqrt")  # rules resolve from the N = 600 rows
    assert r.settings["n_bins"] == 25 and r.settings["n_bins_rule"] == "sqrt"
    assert float(r) == pytest.approx(_rm_gce(y, p, "adaptive", 25), rel=1e-12)
    assert r.describe().startswith("ACE = ")
    with pytest.raises(ValueError, match="threshold"):
        tace(y, p, threshold=1.0)
    with pytest.raises(TypeError, match="threshold"):
        tace(y, p, threshold="0.01")
    with pytest.raises(ValueError, match="norm"):
        ace(y, p, norm="max")
    with pytest.raises(ValueError, match="n_bins"):
        sce(y, p, n_bins=0)


def test_nixon_torch_input_matches_numpy(nixon_data):
    torch = pytest.importorskip("torch")
    y, p = nixon_data
    assert float(ace(torch.as_tensor(y), torch.as_tensor(p))) == float(ace(y, p))


def test_nixon_on_real_outputs(cifar10_ce_test):
    from calkit.logits import softmax

    logits, y = cifar10_ce_test
    p = softmax(logits.astype(np.float64))
    for func, scheme, eps in ((sce, "even", 0.0), (ace, "adaptive", 0.0),
                              (tace, "adaptive", 0.01)):
        assert float(func(y, p)) == pytest.approx(_rm_gce(y, p, scheme, 30, eps), rel=1e-10)


def test_rules_with_torch_input_and_weights():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    p = rng.uniform(size=500)
    y = (rng.uniform(size=500) < p).astype(int)
    w = (np.arange(500) % 5 == 0).astype(float)  # 100 rows of positive weight
    r = calibration_error(torch.as_tensor(y), torch.as_tensor(p), n_bins="sqrt",
                          view="positive", sample_weight=torch.as_tensor(w))
    assert r.settings["n_bins"] == 10 and r.settings["n_bins_rule"] == "sqrt"
    assert float(r) == pytest.approx(float(calibration_error(y, p, n_bins=10, view="positive",
                                                             sample_weight=w)), abs=1e-14)
    s = calibration_error(torch.as_tensor(y), torch.as_tensor(p), n_bins="sweep",
                          view="positive")
    assert torch.is_tensor(s.value)
    assert float(s) == float(sweep_ece(y, p, view="positive", strategy="uniform"))
