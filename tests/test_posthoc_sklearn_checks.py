"""scikit-learn's estimator checks over every calibrator, each expected failure with its reason.

scikit-learn's generic checks feed arbitrary real features as ``X``.  For a calibrator
that reads ``X`` as one logit per class this is valid input exactly when ``X`` has at
least as many columns as there are classes, so most checks apply and pass.  The checks
listed below cannot pass for the reason given (``xfail_strict``: a listed check that
starts passing fails the run, so the lists stay exact).

The default run checks light settings of every calibrator (fewer solver iterations,
fewer perturbations; the checks test the API, not the optimum); the slow run checks
the defaults.  ``FeatureClipping`` is not checked: its ``fit`` needs the model's final
layer (``coef=`` or ``logits=``), which the generic checks cannot pass.
"""

from __future__ import annotations

import warnings

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from calkit.posthoc import (
    BetaCalibration,
    ConsistencyCalibration,
    DirichletCalibration,
    EnsembleTemperatureScaling,
    HistogramBinning,
    IsotonicCalibration,
    MatrixScaling,
    MultilabelCalibration,
    PerLabelIsotonic,
    PerLabelPlatt,
    PerLabelTemperature,
    PlattScaling,
    SplineCalibration,
    TemperatureScaling,
    VectorScaling,
    VennAbersCalibration,
)

_BLOBS = ("make_blobs data: 3 classes on 2 feature columns, but a calibrator reads one "
          "logit column per class, so 2 columns cannot hold 3 classes")
_ONE_LABEL = ("a calibrator keeps (or recalibrates) the model's own prediction, the argmax "
              "of the logits; it does not learn to predict the single class it saw")
_TOLERANCE = ("weighted and repeated-row fits agree to the solver's tolerance (~1e-7 "
              "relative; test_weighted_fit_equals_repeated_rows checks 1e-6), the check "
              "asks for rtol=1e-7")
_DECISION = ("decision_function returns the (N, K) calibrated logits, also for K = 2 "
             "(scikit-learn's binary convention is a 1-D decision value)")
_MONTE_CARLO = ("vote shares are Monte-Carlo estimates: the noise is drawn for the whole "
                "batch from a fixed seed, so a row's draws depend on its position and the "
                "batch size (and a repeated row gets draws of its own)")
_ECE_BINS = ("criterion='ece' is the 15-bin ECE, which needs at least 15 calibration "
             "samples; the check fits on fewer (criterion='nll' passes)")
_FOLDS = ("a cross Venn-Abers predictor splits the rows into folds by a seeded permutation, "
          "so repeated rows fall into other folds than one row of weight 2")
_BINARY_COLUMNS = ("binary calibrators read X as 1-D scores or (N, 2) logits; the check "
                   "feeds 3 or more feature columns")

MULTICLASS_FAILURES = dict.fromkeys(
    ["check_estimators_overwrite_params", "check_estimators_fit_returns_self",
     "check_readonly_memmap_input", "check_classifiers_classes", "check_classifiers_train"],
    _BLOBS)
BINARY_FAILURES = dict.fromkeys(
    ["check_fit_score_takes_y", "check_dont_overwrite_parameters",
     "check_n_features_in_after_fitting", "check_estimators_dtypes",
     "check_sample_weights_list", "check_sample_weight_equivalence_on_dense_data",
     "check_dtype_object", "check_pipeline_consistency", "check_estimators_nan_inf",
     "check_estimators_pickle", "check_f_contiguous_array_estimator", "check_supervised_y_2d",
     "check_transformer_data_not_an_array", "check_transformer_general",
     "check_methods_sample_order_invariance", "check_methods_subset_invariance",
     "check_fit2d_1sample", "check_dict_unchanged", "check_fit2d_predict1d",
     "check_positive_only_tag_during_fit"], _BINARY_COLUMNS)
_LABEL_MATRIX = ("the check fits on one class label per sample (1-D y); a per-label "
                 "(multilabel) calibrator needs a 0/1 label matrix y of shape (N, L), one "
                 "column per logit column of X")
_LABEL_COLUMNS = ("the multilabel / multi-output check gives X a number of feature columns "
                  "other than y's number of labels (or non-binary outputs); a per-label "
                  "calibrator reads exactly one logit column per label")
MULTILABEL_FAILURES = {
    **dict.fromkeys(
        ["check_classifier_data_not_an_array", "check_classifiers_classes",
         "check_classifiers_train", "check_dict_unchanged", "check_dont_overwrite_parameters",
         "check_dtype_object", "check_estimators_dtypes", "check_estimators_fit_returns_self",
         "check_estimators_nan_inf", "check_estimators_overwrite_params",
         "check_estimators_pickle", "check_f_contiguous_array_estimator",
         "check_fit2d_1sample", "check_fit2d_predict1d", "check_fit_check_is_fitted",
         "check_fit_idempotent", "check_fit_score_takes_y",
         "check_methods_sample_order_invariance", "check_methods_subset_invariance",
         "check_n_features_in", "check_n_features_in_after_fitting",
         "check_pipeline_consistency", "check_positive_only_tag_during_fit",
         "check_readonly_memmap_input", "check_sample_weight_equivalence_on_dense_data",
         "check_sample_weights_list", "check_sample_weights_not_an_array",
         "check_sample_weights_not_overwritten", "check_sample_weights_pandas_series",
         "check_sample_weights_shape", "check_transformer_data_not_an_array",
         "check_transformer_general"], _LABEL_MATRIX),
    **dict.fromkeys(
        ["check_classifier_multioutput",
         "check_classifiers_multilabel_output_format_decision_function",
         "check_classifiers_multilabel_output_format_predict",
         "check_classifiers_multilabel_output_format_predict_proba",
         "check_classifiers_multilabel_representation_invariance"], _LABEL_COLUMNS),
    "check_fit2d_1feature": ("the check's one-column y holds the class labels 0, 1, 2; a "
                             "label column must be 0/1"),
    "check_classifier_not_supporting_multiclass": (
        "the check fits 1-D multiclass labels and wants the binary-only message; a per-label "
        "calibrator refuses them because y must be a 0/1 label matrix (multi_label tag)"),
}


def expected_failures(est) -> dict[str, str]:
    """The checks ``est`` cannot pass, with the reason (see the module docstring)."""
    if isinstance(est, PerLabelTemperature | PerLabelPlatt | PerLabelIsotonic
                  | MultilabelCalibration):
        out = dict(MULTILABEL_FAILURES)
        if isinstance(est, PerLabelTemperature):  # has max_iter: the n_iter_ checks run
            out.update(dict.fromkeys(["check_non_transformer_estimators_n_iter",
                                      "check_transformer_n_iter"], _LABEL_MATRIX))
        return out
    if isinstance(est, PlattScaling | BetaCalibration):
        out = dict(BINARY_FAILURES)
        if isinstance(est, PlattScaling):
            out["check_fit1d"] = "1-D X is Platt scaling's own input (real-valued scores)"
        return out
    out = dict(MULTICLASS_FAILURES)
    if not isinstance(est, VectorScaling | MatrixScaling | DirichletCalibration
                      | VennAbersCalibration):  # Venn-Abers predicts the one class it saw
        out["check_classifiers_one_label"] = _ONE_LABEL
    if isinstance(est, DirichletCalibration):  # (the block-preconditioned solver's path
        # rounds differently on weighted and repeated rows even when both stop at max_iter)
        out["check_sample_weight_equivalence_on_dense_data"] = _TOLERANCE
    if isinstance(est, DirichletCalibration):
        out["check_decision_proba_consistency"] = _DECISION
        out["check_classifiers_classes"] = _BLOBS + "; and " + _DECISION
        out["check_classifiers_train"] = _BLOBS + "; and " + _DECISION
    if isinstance(est, VennAbersCalibration) and est.n_folds is not None:
        out["check_sample_weight_equivalence_on_dense_data"] = _FOLDS
    if isinstance(est, ConsistencyCalibration):
        # the noise is drawn per row, so a repeated row gets new noise, not its twin's
        out["check_sample_weight_equivalence_on_dense_data"] = _MONTE_CARLO
        if est.criterion == "ece":
            out.update(dict.fromkeys(
                ["check_sample_weights_pandas_series", "check_sample_weights_not_an_array",
                 "check_estimators_nan_inf", "check_classifier_data_not_an_array",
                 "check_classifiers_one_label_sample_weights", "check_fit2d_1sample"],
                _ECE_BINS))
    return out


#: every checked calibrator, in light settings (fast enough for the default run)
LIGHT = [
    TemperatureScaling(),
    EnsembleTemperatureScaling(),
    VectorScaling(max_iter=50),
    MatrixScaling(max_iter=50),
    SplineCalibration(),
    HistogramBinning(n_bins=5),
    IsotonicCalibration(),
    PlattScaling(),
    BetaCalibration(),
    DirichletCalibration(max_iter=50),
    ConsistencyCalibration(noise_scales=[0.5, 2.0], n_perturbations=20, criterion="nll"),
    PerLabelTemperature(),  # the per-label base; the other per-label classes: slow run
    VennAbersCalibration(),
]


def _run(est, check):
    # one BLAS thread: the checks fit on tiny arrays, where thread start-up dominates
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning on the checks' random data
        check(est)


@parametrize_with_checks(LIGHT, expected_failed_checks=expected_failures, xfail_strict=True)
def test_sklearn_checks(estimator, check):
    _run(estimator, check)


@pytest.mark.slow
@parametrize_with_checks([VectorScaling(), MatrixScaling(), DirichletCalibration(),
                          HistogramBinning(n_bins=10), ConsistencyCalibration(n_perturbations=50),
                          VennAbersCalibration(multiclass="one_vs_one", n_folds=2)],
                         expected_failed_checks=expected_failures, xfail_strict=True)
def test_sklearn_checks_defaults(estimator, check):
    _run(estimator, check)


@pytest.mark.slow
@parametrize_with_checks([PerLabelPlatt(), PerLabelIsotonic(),
                          MultilabelCalibration(method="isotonic")],
                         expected_failed_checks=expected_failures, xfail_strict=True)
def test_sklearn_checks_multilabel(estimator, check):
    _run(estimator, check)
