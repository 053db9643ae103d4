"""Issue 14, items 3, 9, 5 and the parameter rules: masked arrays, labels, array kinds,
settings.  Every bad input is a ValueError/TypeError naming the argument."""

import numpy as np
import pytest

import calkit
from calkit import (
    accuracy,
    assign_bins,
    bin_table,
    brier_score,
    calibration_error,
    ece,
    nll,
    quantile_edges,
    smooth_ece,
    uniform_edges,
)
from calkit._validation import MAX_BINS, check_labels
from calkit.metrics import bootstrap, error_from_table, ood_metrics, risk_coverage

P3 = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.5, 0.4, 0.1]])
Y3 = np.array([0, 1, 2, 1])


# ---------------------------------------------------------------- item 3: masked arrays
def test_masked_probabilities_are_refused_not_silently_used():
    masked = np.ma.masked_array(P3, mask=[[0] * 3, [1] * 3, [0] * 3, [0] * 3])
    with pytest.raises(TypeError, match=r"y_prob is a masked array.*compressed"):
        ece(Y3, masked)
    with pytest.raises(TypeError, match="y_true is a masked array"):
        ece(np.ma.masked_array(Y3, mask=[0, 1, 0, 0]), P3)
    # no masked entry: the data are read as they are
    assert ece(Y3, np.ma.masked_array(P3), n_bins=2) == ece(Y3, P3, n_bins=2)


@pytest.mark.parametrize("call", [
    lambda m: bin_table(m, [0, 1, 1]),
    lambda m: assign_bins(m, uniform_edges(3)),
    lambda m: quantile_edges(m, 2),
    lambda m: brier_score([0, 1, 1], m),
    lambda m: nll([0, 1, 1], m),
    lambda m: ood_metrics(m, np.array([0.1, 0.2])),
    lambda m: risk_coverage([0, 1, 1], np.array([[.6, .4], [.3, .7], [.2, .8]]), confidence=m),
], ids=["bin_table", "assign_bins", "quantile_edges", "brier", "nll", "ood", "risk_cov"])
def test_masked_arrays_are_refused_everywhere(call):
    m = np.ma.masked_array([0.2, 0.6, 0.9], mask=[0, 1, 0])
    with pytest.raises(TypeError, match="masked"):
        call(m)


def test_masked_inputs_are_refused_by_calibrators():
    # calibrators that validate through _validation's checks (check_scores / check_logits)
    posthoc = pytest.importorskip("calkit.posthoc")
    scores = np.ma.masked_array([0.2, 0.6, 0.9, 0.4], mask=[0, 1, 0, 0])
    with pytest.raises(TypeError, match="X is a masked array"):
        posthoc.BetaCalibration().fit(scores, [0, 1, 1, 0])
    z = np.ma.masked_array(np.log([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6]]), mask=[[0, 0], [1, 0],
                                                                              [0, 0]])
    with pytest.raises(TypeError, match="X is a masked array"):
        posthoc.BetaCalibration().fit(z, [0, 1, 1])


# ---------------------------------------------------------------- item 9: labels
@pytest.mark.parametrize("labels, message", [
    (np.array([0, 1 + 2j, 2, 1]), "complex"),
    (np.array([0.0, np.inf, 2.0, 1.0]), "NaN or infinite"),
    (np.array([0.0, np.nan, 2.0, 1.0]), "NaN or infinite"),
    (np.array([0.0, 0.5, 2.0, 1.0]), "non-integer"),
    (np.array([0, 2 ** 40, 2, 1], dtype=np.int64), r"\[0, 1099511627776\]"),
    (np.array([0, 2 ** 63 + 5, 2, 1], dtype=np.uint64), "9223372036854775813"),
    (np.array([0.0, 1e30, 2.0, 1.0]), "1e"),
    (np.array([0, -1, 2, 1]), r"\[-1, 2\]"),
])
def test_bad_numeric_labels_name_y_true_and_show_the_value_as_given(labels, message):
    with pytest.raises((ValueError, TypeError), match="y_true") as info:
        ece(labels, P3)
    assert info.match(message)


def test_string_labels_map_through_classes_like_integers():
    words = np.array(["cat", "dog", "eel", "dog"])
    assert ece(words, P3, n_bins=2) == ece(Y3, P3, n_bins=2)
    r = calibration_error(list(words), P3, n_bins=2)
    assert r.settings["classes"] == ["cat", "dog", "eel"]   # inferred, sorted
    # explicit classes give the column order; a permuted class list permutes the columns
    order = ["eel", "cat", "dog"]
    assert ece(words, P3[:, [2, 0, 1]], n_bins=2, classes=order) == ece(Y3, P3, n_bins=2)
    assert brier_score(words, P3) == brier_score(Y3, P3)
    assert nll(words, P3) == nll(Y3, P3)
    assert accuracy(words, P3) == accuracy(Y3, P3)
    assert smooth_ece(words, P3).value == smooth_ece(Y3, P3).value
    # object arrays of numbers are numbers (a pandas object column of ints)
    assert ece(np.array([0, 1, 2, 1], dtype=object), P3, n_bins=2) == ece(Y3, P3, n_bins=2)
    with pytest.raises(ValueError, match="y_true contains NaN"):
        ece(np.array([0, 1, float("nan"), 1], dtype=object), P3, n_bins=2)
    s = calkit.report.summarize(words, P3, n_bins=2)
    assert s.settings["classes"] == ["cat", "dog", "eel"]
    assert s.metrics["ece_uniform"] == ece(Y3, P3, n_bins=2)
    # integer labels that are not 0..K-1 are mapped with classes too
    assert ece(np.array([10, 20, 30, 20]), P3, n_bins=2, classes=[10, 20, 30]) == ece(
        Y3, P3, n_bins=2)


def test_string_labels_that_cannot_be_placed_are_refused_clearly():
    with pytest.raises(ValueError, match=r"2 distinct labels but y_prob has 3 columns.*classes="):
        ece(np.array(["cat", "dog", "dog", "cat"]), P3)
    with pytest.raises(ValueError, match=r"not in classes: \['fox'\]"):
        ece(np.array(["cat", "dog", "fox", "dog"]), P3, classes=["cat", "dog", "eel"])
    with pytest.raises(ValueError, match="classes has 2 labels but y_prob has 3"):
        ece(Y3, P3, classes=[0, 1])
    with pytest.raises(ValueError, match="duplicate"):
        ece(Y3, P3, classes=[0, 1, 1])
    with pytest.raises(ValueError, match="mixes label types"):
        ece(np.array(["cat", 1, 2.5, "dog"], dtype=object), P3)
    with pytest.raises(ValueError, match=r"y_true labels must lie in \[0, 2\].*classes="):
        ece(np.array([1, 2, 3, 2]), P3)   # 1-based labels: the hint names classes=
    with pytest.raises(ValueError, match="holds labels that are not in classes"):
        check_labels(np.array(["a", "z"]), 2, 2, classes=["a", "b"], name="y")


def test_binary_string_labels_make_the_second_sorted_class_positive():
    q = np.array([0.9, 0.2, 0.7, 0.4])
    words = np.array(["spam", "ham", "spam", "ham"])
    assert ece(words, q, n_bins=2, view="positive") == ece([1, 0, 1, 0], q, n_bins=2,
                                                             view="positive")
    assert ece(words, q, n_bins=2, view="positive", classes=["spam", "ham"]) == ece(
        [0, 1, 0, 1], q, n_bins=2, view="positive")


def test_bootstrap_with_string_labels_resamples_the_mapped_labels():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    p = rng.dirichlet(np.ones(3), 300)
    words = np.array(["a", "b", "c"])[y]
    a = bootstrap(ece, words, p, n_resamples=20, random_state=1)
    b = bootstrap(ece, y, p, n_resamples=20, random_state=1)
    assert np.array_equal(a.distribution, b.distribution)
    assert a.settings["classes"] == ["a", "b", "c"]


# ---------------------------------------------------------------- item 5: array kinds
def test_torch_labels_with_numpy_probabilities_and_back():
    torch = pytest.importorskip("torch")
    want = ece(Y3, P3, n_bins=3)
    assert ece(torch.tensor(Y3), P3, n_bins=3) == pytest.approx(want, rel=1e-12)
    assert float(ece(Y3, torch.tensor(P3), n_bins=3)) == pytest.approx(want, rel=1e-12)
    t = bin_table(np.array([0.2, 0.7]), torch.tensor([0, 1]), n_bins=2)
    assert t.count.tolist() == [1, 1] and isinstance(t.count, np.ndarray)


def test_bfloat16_and_requires_grad_tensors():
    torch = pytest.importorskip("torch")
    p = torch.tensor([[0.5, 0.5], [0.25, 0.75], [0.75, 0.25]], dtype=torch.bfloat16,
                     requires_grad=True)
    y = [0, 1, 1]
    ref = p.detach().double().numpy()
    for metric in (brier_score, nll, accuracy, lambda y, p: ece(y, p, n_bins=2)):
        assert float(metric(y, p)) == pytest.approx(float(metric(y, ref)), rel=1e-9), metric
    assert float(calkit.sweep_ece(y, p)) == pytest.approx(float(calkit.sweep_ece(y, ref)))
    r = bootstrap(brier_score, y, p, n_resamples=5, random_state=0)
    assert r.value == pytest.approx(brier_score(y, ref))


def test_sparse_meta_and_complex_tensors_are_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="y_prob is a torch.sparse_coo tensor"):
        ece(Y3, torch.tensor(P3).to_sparse())
    with pytest.raises(TypeError, match="meta"):
        ece(Y3, torch.empty(4, 3, device="meta"))
    with pytest.raises(TypeError, match="complex"):
        ece(Y3, torch.tensor(P3, dtype=torch.complex64))


def test_pandas_objects_are_read_and_nullable_missing_values_refused():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(P3, columns=["a", "b", "c"])
    assert ece(pd.Series(Y3), frame, n_bins=2) == ece(Y3, P3, n_bins=2)
    assert ece(pd.Series(["a", "b", "c", "b"], dtype="category"), frame, n_bins=2,
               classes=list(frame.columns)) == ece(Y3, P3, n_bins=2)
    s = pd.Series([0.2, None, 0.9], dtype="Float64")
    with pytest.raises(ValueError, match="scores contains NaN"):
        bin_table(s, [0, 1, 1])
    with pytest.raises(ValueError, match="y_true contains NaN"):
        ece(pd.Series([0, None, 2, 1], dtype="Int64"), P3)


# ---------------------------------------------------------------- parameters
def test_n_bins_has_an_upper_bound_and_takes_numpy_integers():
    with pytest.raises(ValueError, match="n_bins=1000000000 is too large"):
        uniform_edges(10 ** 9)
    with pytest.raises(ValueError, match="too large"):
        bin_table(np.array([0.2, 0.7]), [0, 1], n_bins=10 ** 9)
    with pytest.raises(ValueError, match="more than the number of samples"):
        ece(Y3, P3, n_bins=5)
    assert len(uniform_edges(MAX_BINS)) == MAX_BINS + 1
    assert ece(Y3, P3, n_bins=np.int64(2)) == ece(Y3, P3, n_bins=2)
    assert ece(Y3, P3, n_bins=np.array(2)) == ece(Y3, P3, n_bins=2)
    for bad in (True, 2.0, np.float64(2), "2", None):
        with pytest.raises(ValueError, match="n_bins"):
            ece(Y3, P3, n_bins=bad)


def test_norm_names_are_validated_everywhere_and_case_is_not_guessed():
    t = bin_table(np.array([0.2, 0.7, 0.9]), [0, 1, 1], n_bins=2)
    with pytest.raises(ValueError, match=r"norm must be one of.*'L1'.*lower case: 'l1'"):
        error_from_table(t, norm="L1")
    with pytest.raises(ValueError, match="norm"):
        error_from_table(t, norm="l3")
    with pytest.raises(ValueError, match="norm"):
        ece(Y3, P3, norm="L2")
    with pytest.raises(TypeError, match="table must be a BinTable"):
        error_from_table({"count": [1]})


def test_numpy_scalars_work_where_python_ones_do():
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(3), 200)
    y = rng.integers(0, 3, 200)
    assert smooth_ece(y, p, eps=np.float64(1e-3)).value == smooth_ece(y, p).value
    assert nll(y, p, eps=np.float32(1e-7)) == pytest.approx(nll(y, p, eps=1e-7))
    a = bootstrap(brier_score, y, p, n_resamples=np.int64(10), confidence=np.float64(0.9),
                  random_state=0)
    assert a.low <= a.high
    assert ece(y, p, sum_tol=np.float32(1e-3)) == ece(y, p)


@pytest.mark.parametrize("call, name", [
    (lambda y, p: smooth_ece(y, p, eps=0), "eps"),
    (lambda y, p: smooth_ece(y, p, eps=float("nan")), "eps"),
    (lambda y, p: smooth_ece(y, p, sigma=-1), "sigma"),
    (lambda y, p: smooth_ece(y, p, band=1.5), "band"),
    (lambda y, p: smooth_ece(y, p, band=0.9, n_resamples=1), "n_resamples"),
    (lambda y, p: nll(y, p, eps=2.0), "eps"),
    (lambda y, p: nll(y, p, eps=True), "eps"),
    (lambda y, p: bootstrap(ece, y, p, n_resamples=1), "n_resamples"),
    (lambda y, p: bootstrap(ece, y, p, n_resamples=10.5), "n_resamples"),
    (lambda y, p: bootstrap(ece, y, p, confidence=1.0), "confidence"),
    (lambda y, p: bootstrap(ece, y, p, confidence="95%"), "confidence"),
    (lambda y, p: bootstrap(ece, y, p, batch=0), "batch"),
    (lambda y, p: ece(y, p, sum_tol=-1), "sum_tol"),
    (lambda y, p: ece(y, p, sum_tol=float("inf")), "sum_tol"),
    (lambda y, p: calibration_error(y, p, norm="l2", debias="yes"), "debias"),
    (lambda y, p: risk_coverage(y, p).accuracy_at_coverage("all"), "coverage"),
    (lambda y, p: risk_coverage(y, p).coverage_at_risk(2), "risk"),
])
def test_invalid_settings_are_refused(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call(Y3, P3)


@pytest.mark.parametrize("call, message", [
    (lambda: assign_bins(np.array([0.2, np.nan]), uniform_edges(2)), "scores contains NaN"),
    (lambda: assign_bins(np.array([0.2, 0.5]), np.array([0.0, 0.6, 0.4, 1.0])), "increasing"),
    (lambda: assign_bins(np.array([0.2, 0.5]), np.array([0.0, 50.0, 100.0])), r"\[0, 1\]"),
    (lambda: assign_bins(np.array([0.2, 0.5]), np.array([0.0, np.nan, 1.0])), "edges contains"),
    (lambda: assign_bins(np.array([[0.2, 0.5]]), uniform_edges(2)), "scores must be 1-D"),
    (lambda: assign_bins(np.array(["a", "b"]), uniform_edges(2)), "scores must be numeric"),
    (lambda: assign_bins(np.array([0.2]), np.array([0.5])), "at least 2"),
    (lambda: quantile_edges(np.array([0.2, np.nan]), 2), "scores contains NaN"),
    (lambda: quantile_edges(np.array([0.2, 1.5]), 2), r"scores must lie in \[0, 1\]"),
    (lambda: quantile_edges(np.array([0.2, 0.5]), 0), "n_bins"),
    (lambda: uniform_edges(np.float64(3)), "n_bins"),
    (lambda: bin_table(np.array([0.2, 0.5]), [0, 1], edges=[0.0, 0.5, 0.5, 1.0]), "edges"),
    (lambda: bin_table(np.array([0.2, 0.5]), [0, 1], strategy="Uniform"), "lower case"),
])
def test_low_level_helpers_validate_their_inputs(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_validation_stays_a_single_pass_for_plain_float_input():
    # the fast path is the one tested for speed in benchmarks/: here, that nothing is copied
    from calkit._validation import check_classification

    p = np.random.default_rng(0).dirichlet(np.ones(5), 100).astype(np.float32)
    data = check_classification(np.zeros(100, dtype=np.int64), p)
    assert data.y_prob is p and data.classes is None
