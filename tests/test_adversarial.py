"""Issue 14, adversarial campaign: every public metric entry point against a battery of bad
inputs.  Each case must raise ValueError or TypeError whose message names the argument
(never a NaN, a wrong number, a raw numpy/int() message or a huge allocation).  Property
tests check that the accepted spellings of the same data give the same number.

``BAD_CASES`` counts the bad-input cases tried (reported in the issue notes).
"""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import calkit
import calkit.metrics as M
from calkit.metrics.grouped import grouped_calibration

N, K = 6, 3
rng = np.random.default_rng(0)
P = rng.dirichlet(np.ones(K), N)
Y = np.array([0, 1, 2, 1, 0, 2])
S1 = np.array([0.9, 0.2, 0.7, 0.4, 0.6, 0.8])   # 1-D scores
C1 = np.array([1, 0, 1, 1, 0, 1])                 # 0/1 correctness


# --------------------------------------------------------------------- entry points
def _rc(f):
    return lambda y, p, **kw: f(y, p, **kw)


#: (y_true, y_prob) entry points; each takes the 2-D data, view where 1-D needs one
PAIR_METRICS = {
    "calibration_error": lambda y, p, **kw: calkit.calibration_error(y, p, n_bins=2, **kw),
    "ece": lambda y, p, **kw: calkit.ece(y, p, n_bins=2, **kw),
    "debiased_ece": lambda y, p, **kw: calkit.debiased_ece(y, p, n_bins=2, **kw),
    "sweep_ece": calkit.sweep_ece,
    "smooth_ece": calkit.smooth_ece,
    "brier_score": calkit.brier_score,
    "nll": calkit.nll,
    "accuracy": calkit.accuracy,
    "convention_error": lambda y, p, **kw: calkit.convention_error(y, p, n_bins=2, **kw),
    "bootstrap": lambda y, p, **kw: calkit.bootstrap(calkit.ece, y, p, n_bins=2,
                                                     n_resamples=3, **kw),
    "risk_coverage": M.risk_coverage,
    "aurc": M.aurc,
    "eaurc": M.eaurc,
    "accuracy_at_coverage": lambda y, p, **kw: M.accuracy_at_coverage(y, p, 0.5, **kw),
    "coverage_at_risk": lambda y, p, **kw: M.coverage_at_risk(y, p, 0.5, **kw),
    "summarize": lambda y, p, **kw: calkit.report.summarize(y, p, n_bins=2, **kw),
    "accumulator": lambda y, p, **kw: calkit.CalibrationAccumulator(n_bins=2).update(y, p),
}
NO_VIEW = {"brier_score", "nll", "convention_error", "accumulator"}


def _masked(a, where=0):
    m = np.ma.masked_array(a, mask=np.zeros(np.shape(a), bool))
    m.mask.flat[where] = True
    return m


def _with(a, i, v):
    b = np.array(a, dtype=np.float64)
    b.flat[i] = v
    return b


#: bad y_prob values -> the argument the message must name
BAD_PROBS = {
    "nan": _with(P, 4, np.nan),
    "inf": _with(P, 4, np.inf),
    "neg_inf": _with(P, 4, -np.inf),
    "negative": np.abs(P) * np.array([1, 1, -1]),
    "rows_sum_1.5": P * 1.5,
    "logits": np.log(P),
    "percent": P * 100,
    "3d": P[None],
    "scalar": np.float64(0.5),
    "empty": np.zeros((0, K)),
    "one_column": P[:, :1] / P[:, :1],
    "int_dtype": (P > 0.3).astype(int),
    "bool_dtype": P > 0.3,
    "str_dtype": P.astype(str),
    "object": np.array([[0.5, 0.5], [1.0]], dtype=object),
    "ragged_list": [[0.5, 0.5], [1.0]],
    "complex": P.astype(np.complex128),
    "masked": _masked(P),
    "none": None,
    "wrong_n": P[:-1],
    "1d_out_of_range": np.array([0.9, 1.2, 0.7, 0.4, 0.6, 0.8]),
    "1d_nan": _with(S1, 1, np.nan),
    "dict": {"a": 1},
}

#: bad y_true values (with the valid P)
BAD_LABELS = {
    "nan": _with(Y, 1, np.nan),
    "inf": _with(Y, 1, np.inf),
    "neg_inf": _with(Y, 1, -np.inf),
    "non_integral": _with(Y, 1, 0.5),
    "complex": Y.astype(np.complex128) + 1j,
    "out_of_range": np.array([0, 1, 3, 1, 0, 2]),
    "negative": np.array([0, -1, 2, 1, 0, 2]),
    "huge_int": np.array([0, 2 ** 62, 2, 1, 0, 2], dtype=np.int64),
    "huge_uint": np.array([0, 2 ** 64 - 1, 2, 1, 0, 2], dtype=np.uint64),
    "huge_float": _with(Y, 1, 1e300),
    "words_two_distinct": np.array(["a", "b", "a", "b", "a", "b"]),
    "words_four_distinct": np.array(["a", "b", "c", "d", "a", "b"]),
    "mixed_objects": np.array(["a", 1, 2.5, "b", "a", 1], dtype=object),
    "none_objects": np.array([None, "a", "b", "c", "a", "b"], dtype=object),
    "too_short": Y[:-1],
    "too_long": np.r_[Y, 0],
    "2d_not_one_hot": np.ones((N, K)),
    "2d_wrong_shape": np.eye(K)[Y][:, :2],
    "3d": Y[None, None],
    "masked": _masked(Y),
    "none": None,
    "scalar": 1,
}


def _name_of(case: str) -> str:
    return "y_prob" if case.startswith("p:") else "y_true"


PAIR_CASES = [(m, f"p:{c}") for m in PAIR_METRICS for c in BAD_PROBS] + [
    (m, f"y:{c}") for m in PAIR_METRICS for c in BAD_LABELS]


@pytest.mark.parametrize("metric, case", PAIR_CASES)
def test_bad_pair_inputs_are_refused_naming_the_argument(metric, case):
    kind, key = case.split(":", 1)
    y, p = (Y, BAD_PROBS[key]) if kind == "p" else (BAD_LABELS[key], P)
    kw = {}
    if metric not in NO_VIEW and kind == "p" and key.startswith("1d"):
        kw["view"] = "positive" if metric != "risk_coverage" else "top_label"
        if metric in ("aurc", "eaurc", "accuracy_at_coverage", "coverage_at_risk"):
            kw["view"] = "top_label"
        y = np.array([0, 1, 1, 0, 1, 1])
    with pytest.raises((ValueError, TypeError)) as info:
        PAIR_METRICS[metric](y, p, **kw)
    message = str(info.value)
    if metric == "convention_error" and "netcal" in message:
        return  # netcal's own rule refuses binary labels with 3 columns, as netcal does
    assert _name_of(case) in message, message
    assert "Traceback" not in message and len(message) < 600


ONE_D_METRICS = [m for m in PAIR_METRICS if m not in NO_VIEW]


@pytest.mark.parametrize("metric", ONE_D_METRICS)
def test_1d_scores_without_a_view_are_refused(metric):
    with pytest.raises(ValueError, match="view="):
        PAIR_METRICS[metric](C1, np.array([0.9, 0.2, 0.7, 0.4, 0.6, 0.3]))


# --------------------------------------------------------------------- settings
BAD_N_BINS = [0, -3, 2.5, True, False, "10", None, 10 ** 9, np.float64(2), float("nan"),
              np.array([2, 3])]
N_BINS_USERS = {
    "calibration_error": lambda n: calkit.calibration_error(Y, P, n_bins=n),
    "ece": lambda n: calkit.ece(Y, P, n_bins=n),
    "debiased_ece": lambda n: calkit.debiased_ece(Y, P, n_bins=n),
    "convention_error": lambda n: calkit.convention_error(Y, P, n_bins=n),
    "bin_table": lambda n: calkit.bin_table(S1, C1, n_bins=n),
    "uniform_edges": calkit.uniform_edges,
    "quantile_edges": lambda n: calkit.quantile_edges(S1, n),
    "grouped": lambda n: grouped_calibration({"c": S1, "ok": C1}, confidence="c",
                                             correct="ok", n_bins=n),
    "accumulator": lambda n: calkit.CalibrationAccumulator(n_bins=n),
    "summarize": lambda n: calkit.report.summarize(Y, P, n_bins=n),
}
SETTING_CASES = [("n_bins", u, repr(b)) for u in N_BINS_USERS for b in range(len(BAD_N_BINS))]

BAD_OPTIONS = {
    "norm": (["L1", "L2", "MAX", "l3", None, 1, ""], {
        "calibration_error": lambda v: calkit.calibration_error(Y, P, n_bins=2, norm=v),
        "ece": lambda v: calkit.ece(Y, P, n_bins=2, norm=v),
        "sweep_ece": lambda v: calkit.sweep_ece(Y, P, norm=v),
        "error_from_table": lambda v: M.error_from_table(calkit.bin_table(S1, C1, 2), v),
        "convention_error": lambda v: calkit.convention_error(Y, P, n_bins=2, norm=v),
    }),
    "strategy": (["Uniform", "equal-mass", None, 0], {
        "calibration_error": lambda v: calkit.calibration_error(Y, P, n_bins=2, strategy=v),
        "bin_table": lambda v: calkit.bin_table(S1, C1, n_bins=2, strategy=v),
        "sweep_ece": lambda v: calkit.sweep_ece(Y, P, strategy=v),
        "convention_error": lambda v: calkit.convention_error(Y, P, n_bins=2, strategy=v),
        "grouped": lambda v: grouped_calibration({"c": S1, "ok": C1}, confidence="c",
                                                 correct="ok", n_bins=2, strategy=v),
    }),
    "closed": (["Right", "both", None], {
        "calibration_error": lambda v: calkit.calibration_error(Y, P, n_bins=2, closed=v),
        "bin_table": lambda v: calkit.bin_table(S1, C1, n_bins=2, closed=v),
        "assign_bins": lambda v: calkit.assign_bins(S1, calkit.uniform_edges(2), closed=v),
    }),
    "view": (["top", "TOP_LABEL", "binary", 0], {
        "ece": lambda v: calkit.ece(Y, P, n_bins=2, view=v),
        "smooth_ece": lambda v: calkit.smooth_ece(Y, P, view=v),
        "sweep_ece": lambda v: calkit.sweep_ece(Y, P, view=v),
        "accuracy": lambda v: calkit.accuracy(Y, P, view=v),
        "risk_coverage": lambda v: M.risk_coverage(Y, P, view=v),
    }),
    "sum_tol": ([-1, 0, float("nan"), float("inf"), "1e-3", True], {
        "ece": lambda v: calkit.ece(Y, P, n_bins=2, sum_tol=v),
        "brier_score": lambda v: calkit.brier_score(Y, P, sum_tol=v),
        "nll": lambda v: calkit.nll(Y, P, sum_tol=v),
        "accumulator": lambda v: calkit.CalibrationAccumulator(sum_tol=v),
    }),
    "eps": ([0, -1e-3, 2.0, float("nan"), "x", True], {
        "nll": lambda v: calkit.nll(Y, P, eps=v),
        "smooth_ece": lambda v: calkit.smooth_ece(Y, P, eps=v),
    }),
    "n_resamples": ([1, 0, 2.5, True, "100", None], {
        "bootstrap": lambda v: calkit.bootstrap(calkit.brier_score, Y, P, n_resamples=v),
        "smooth_ece": lambda v: calkit.smooth_ece(Y, P, band=0.9, n_resamples=v),
    }),
    "confidence": ([0, 1, 1.5, -0.1, "95%", True, float("nan")], {
        "bootstrap": lambda v: calkit.bootstrap(calkit.brier_score, Y, P, confidence=v),
    }),
    "temperature": ([0, -1, "1", float("inf")], {
        "ood_score": lambda v: M.ood_score(np.log(P), temperature=v),
    }),
    "tpr": ([0, 1.5, "0.95", True], {
        "ood_metrics": lambda v: M.ood_metrics(S1, S1[::-1], tpr=v),
    }),
}
for name, (values, users) in BAD_OPTIONS.items():
    SETTING_CASES += [(name, u, repr(v)) for u in users for v in range(len(values))]


@pytest.mark.parametrize("setting, user, index", SETTING_CASES)
def test_bad_settings_are_refused_naming_the_setting(setting, user, index):
    index = int(index)
    if setting == "n_bins":
        call, value = N_BINS_USERS[user], BAD_N_BINS[index]
    else:
        call, value = BAD_OPTIONS[setting][1][user], BAD_OPTIONS[setting][0][index]
    with pytest.raises((ValueError, TypeError), match=setting):
        call(value)


def test_numpy_scalars_are_accepted_like_python_scalars():
    assert calkit.ece(Y, P, n_bins=np.int32(2)) == calkit.ece(Y, P, n_bins=2)
    assert calkit.uniform_edges(np.uint8(4)).tolist() == calkit.uniform_edges(4).tolist()
    assert calkit.CalibrationAccumulator(n_bins=np.int64(3)).n_bins == 3
    assert calkit.nll(Y, P, eps=np.float32(1e-6)) == pytest.approx(calkit.nll(Y, P, eps=1e-6))
    r = calkit.bootstrap(calkit.brier_score, Y, P, n_resamples=np.int16(5),
                         confidence=np.float32(0.5), random_state=0)
    assert r.confidence == pytest.approx(0.5)


# --------------------------------------------------------------------- other entry points
OTHER_CASES = {
    "softmax_nan": (lambda: calkit.softmax(np.array([[0.0, np.nan]])), "logits"),
    "softmax_1d": (lambda: calkit.softmax(np.array([0.0, 1.0])), "logits"),
    "softmax_int": (lambda: calkit.softmax(np.array([[0, 1]])), "logits"),
    "softmax_masked": (lambda: calkit.softmax(_masked(np.zeros((2, 2)))), "logits"),
    "softmax_complex": (lambda: calkit.softmax(np.zeros((2, 2), complex)), "logits"),
    "log_softmax_inf": (lambda: calkit.log_softmax(np.array([[0.0, np.inf]])), "logits"),
    "ood_score_nan": (lambda: M.ood_score(np.array([[0.0, np.nan]])), "x"),
    "ood_score_probs_bad": (lambda: M.ood_score(np.array([[0.5, 0.7]]), logits=False), "x"),
    "ood_score_method": (lambda: M.ood_score(np.zeros((2, 2)), "Energy"), "method"),
    "ood_metrics_nan": (lambda: M.ood_metrics(np.array([0.1, np.nan]), S1), "score_in"),
    "ood_metrics_2d": (lambda: M.ood_metrics(S1, np.zeros((2, 2))), "score_out"),
    "ood_metrics_masked": (lambda: M.ood_metrics(_masked(S1), S1), "score_in"),
    "ood_metrics_str": (lambda: M.ood_metrics(np.array(["a"]), S1), "score_in"),
    "bin_table_nan": (lambda: calkit.bin_table(_with(S1, 0, np.nan), C1), "scores"),
    "bin_table_targets": (lambda: calkit.bin_table(S1, C1 * 2), "targets"),
    "bin_table_len": (lambda: calkit.bin_table(S1, C1[:-1]), "targets"),
    "bin_table_masked": (lambda: calkit.bin_table(S1, _masked(C1)), "targets"),
    "bin_table_edges_pct": (lambda: calkit.bin_table(S1, C1, edges=[0, 50, 100]), "edges"),
    "bin_table_edges_2d": (lambda: calkit.bin_table(S1, C1, edges=[[0, 1]]), "edges"),
    "bin_table_edges_str": (lambda: calkit.bin_table(S1, C1, edges=["a", "b"]), "edges"),
    "assign_nan": (lambda: calkit.assign_bins(_with(S1, 0, np.nan), [0, 0.5, 1]), "scores"),
    "assign_unsorted": (lambda: calkit.assign_bins(S1, [0, 0.7, 0.3, 1]), "edges"),
    "assign_outside": (lambda: calkit.assign_bins(S1, [-1, 0.5, 2]), "edges"),
    "assign_one_edge": (lambda: calkit.assign_bins(S1, [0.5]), "edges"),
    "assign_str": (lambda: calkit.assign_bins(S1.astype(str), [0, 1]), "scores"),
    "quantile_nan": (lambda: calkit.quantile_edges(_with(S1, 0, np.nan), 2), "scores"),
    "quantile_2d": (lambda: calkit.quantile_edges(np.zeros((2, 2)), 2), "scores"),
    "quantile_empty": (lambda: calkit.quantile_edges(np.zeros(0), 2), "scores"),
    "error_from_table_type": (lambda: M.error_from_table(np.zeros(3)), "table"),
    "debiased_from_table_type": (lambda: M.debiased_error_from_table([1, 2]), "table"),
    "grouped_missing_column": (lambda: grouped_calibration({"c": S1}, confidence="c",
                                                           correct="ok"), "ok"),
    "grouped_bad_conf": (lambda: grouped_calibration({"c": S1 * 100, "ok": C1},
                                                     confidence="c", correct="ok"), "c"),
    "grouped_bad_correct": (lambda: grouped_calibration({"c": S1, "ok": C1 + 1},
                                                        confidence="c", correct="ok"), "ok"),
    "grouped_ci": (lambda: grouped_calibration({"c": S1, "ok": C1}, confidence="c",
                                               correct="ok", ci=95), "ci"),
    "bootstrap_metric": (lambda: calkit.bootstrap("ece", Y, P), "metric"),
    "bootstrap_method": (lambda: calkit.bootstrap(calkit.ece, Y, P, method="BCa"), "method"),
    "bootstrap_batch": (lambda: calkit.bootstrap(calkit.ece, Y, P, batch=-1), "batch"),
    "classes_string": (lambda: calkit.ece(Y, P, classes="abc"), "classes"),
    "classes_len": (lambda: calkit.ece(Y, P, classes=[0, 1]), "classes"),
    "classes_dup": (lambda: calkit.ece(Y, P, classes=[0, 0, 1]), "classes"),
    "classes_missing": (lambda: calkit.ece(Y, P, classes=[0, 1, 5]), "y_true"),
    "classes_unhashable": (lambda: calkit.ece(Y, P, classes=[[0], [1], [2]]), "classes"),
    "debias_l1": (lambda: calkit.calibration_error(Y, P, n_bins=2, debias=True), "debias"),
    "confidence_view_2d": (lambda: calkit.ece(Y, P, n_bins=2, view="confidence"), "view"),
    "positive_view_3class": (lambda: calkit.ece(Y, P, n_bins=2, view="positive"), "view"),
    "smooth_classwise": (lambda: calkit.smooth_ece(Y, P, view="classwise"), "view"),
    "sweep_classwise": (lambda: calkit.sweep_ece(Y, P, view="classwise"), "view"),
    "risk_confidence_shape": (lambda: M.risk_coverage(Y, P, confidence=S1[:-1]), "confidence"),
    "risk_confidence_nan": (lambda: M.risk_coverage(Y, P, confidence=_with(S1, 0, np.nan)),
                            "confidence"),
    "risk_confidence_masked": (lambda: M.risk_coverage(Y, P, confidence=_masked(S1)),
                               "confidence"),
    "brier_scale": (lambda: calkit.brier_score(Y, P, scale_by_half=2), "scale_by_half"),
    "sigma_big": (lambda: calkit.smooth_ece(Y, P, sigma=2.0), "sigma"),
}


@pytest.mark.parametrize("case", list(OTHER_CASES))
def test_other_entry_points_refuse_bad_input(case):
    call, name = OTHER_CASES[case]
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert name in str(info.value), str(info.value)


def test_torch_cases():
    torch = pytest.importorskip("torch")
    cases = [
        (lambda: calkit.ece(Y, torch.tensor(_with(P, 0, np.nan))), "y_prob"),
        (lambda: calkit.ece(Y, torch.tensor(P).to_sparse()), "y_prob"),
        (lambda: calkit.ece(Y, torch.tensor(P, dtype=torch.complex128)), "y_prob"),
        (lambda: calkit.ece(torch.tensor(Y + 0.5), torch.tensor(P)), "y_true"),
        (lambda: calkit.ece(torch.tensor(_with(Y, 0, np.nan)), P), "y_true"),
        (lambda: calkit.ece(torch.tensor([0, 1, 5, 1, 0, 2]), P), "y_true"),
        (lambda: calkit.bin_table(torch.tensor(S1), torch.tensor(C1 * 2)), "targets"),
        (lambda: calkit.ece(Y, torch.tensor(P), n_bins=torch.tensor(2)), "n_bins"),
        (lambda: calkit.softmax(torch.zeros(2, 2, dtype=torch.long)), "logits"),
    ]
    for call, name in cases:
        with pytest.raises((ValueError, TypeError), match=name):
            call()
    # the mixes that are valid give the numpy number
    want = calkit.ece(Y, P, n_bins=2)
    assert calkit.ece(torch.tensor(Y), P, n_bins=2) == pytest.approx(want)
    assert float(calkit.ece(Y, torch.tensor(P), n_bins=2)) == pytest.approx(want)
    assert float(calkit.ece(torch.tensor(Y), torch.tensor(P, requires_grad=True),
                            n_bins=2)) == pytest.approx(want)
    assert calkit.ece(torch.tensor(Y, dtype=torch.bfloat16), P, n_bins=2) == pytest.approx(want)
    assert calkit.ece(torch.tensor(Y), P, n_bins=2, classes=[0, 1, 2]) == pytest.approx(want)


BAD_CASES = (len(PAIR_CASES) + len(ONE_D_METRICS) + len(SETTING_CASES) + len(OTHER_CASES)
             + 9)


def test_the_campaign_is_as_large_as_reported():
    assert BAD_CASES >= 1000


# --------------------------------------------------------------------- properties
probabilities = st.integers(2, 5).flatmap(lambda k: st.tuples(
    st.just(k), st.integers(k, 40), st.integers(0, 2 ** 32 - 1)))


def _random_task(k, n, seed):
    r = np.random.default_rng(seed)
    p = r.dirichlet(np.ones(k) * 0.7, n)
    y = np.concatenate([np.arange(k), r.integers(0, k, n - k)])   # every class present
    return y, p, r


@settings(max_examples=40, deadline=None)
@given(probabilities)
def test_string_labels_through_classes_give_the_integer_numbers(task):
    k, n, seed = task
    y, p, r = _random_task(k, n, seed)
    names = np.array([f"class-{r.integers(1000)}-{i}" for i in range(k)])
    order = r.permutation(k)   # classes in any order; the columns follow them
    words = names[y]
    for metric in (lambda a, b, **kw: calkit.ece(a, b, n_bins=min(5, n), **kw),
                   calkit.brier_score, calkit.nll, calkit.accuracy):
        assert metric(words, p[:, np.argsort(order)][:, order], classes=list(names)) == \
            pytest.approx(metric(y, p), rel=1e-12, abs=1e-15)
        assert metric(words, p[:, order], classes=list(names[order])) == pytest.approx(
            metric(y, p), rel=1e-12, abs=1e-15)
    inferred = np.argsort(names)   # without classes: sorted names <-> columns
    assert calkit.ece(words, p[:, inferred], n_bins=min(5, n)) == pytest.approx(
        calkit.ece(y, p, n_bins=min(5, n)), rel=1e-12, abs=1e-15)


@settings(max_examples=40, deadline=None)
@given(probabilities)
def test_confidence_pairs_equal_the_top_label_view_of_the_matrix(task):
    k, n, seed = task
    y, p, _ = _random_task(k, n, seed)
    correct, conf = (p.argmax(1) == y).astype(int), p.max(1)
    b = min(4, n)
    assert calkit.ece(correct, conf, n_bins=b, view="confidence") == pytest.approx(
        calkit.ece(y, p, n_bins=b), rel=1e-12, abs=1e-15)
    assert calkit.accuracy(correct, conf, view="confidence") == pytest.approx(
        calkit.accuracy(y, p))
    assert M.aurc(correct, conf, view="confidence") == pytest.approx(M.aurc(y, p))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60), st.integers(0, 2 ** 32 - 1), st.booleans())
def test_binary_brier_and_nll_agree_across_layouts_and_label_spellings(n, seed, as_float):
    r = np.random.default_rng(seed)
    q = r.uniform(size=n)
    y = r.integers(0, 2, n)
    labels = y.astype(float) if as_float else y.astype(bool)
    two = np.stack([1 - q, q], 1)
    assert calkit.brier_score(labels, two) == pytest.approx(calkit.brier_score(y, q))
    assert calkit.nll(labels, two) == pytest.approx(calkit.nll(y, q))
    m = np.ma.masked_array(q)   # no masked entry: read as its data
    assert calkit.brier_score(y, m) == calkit.brier_score(y, q)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 50), st.integers(1, 12), st.integers(0, 2 ** 32 - 1))
def test_bin_table_dicts_round_trip_through_json(n, bins, seed):
    r = np.random.default_rng(seed)
    s = r.uniform(size=n)
    t = calkit.bin_table(s, r.uniform(size=n) < s, n_bins=bins)
    d = t.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert len(d["edges"]) == bins + 1 and len(d["count"]) == bins
