"""Choose a post-hoc calibrator with data: cross-validation over fast candidates.

No calibrator wins everywhere: temperature scaling is hard to beat on NLL,
binning methods often win on ECE, vector scaling and Dirichlet calibration help
models whose classes are miscalibrated differently.  :class:`AutoCalibration`
lets the validation data decide.  Each candidate is fitted on ``cv - 1`` folds
of the calibration set and scored on the held-out fold by the chosen
``criterion`` (NLL, top-label ECE or Brier score, all from
:mod:`calkit.metrics`); the candidate with the lowest mean held-out score, or
an earlier one in the list that it does not beat by more than a standard
error (``se_rule``), is refitted on all the data and used for prediction.
``cv_results_`` holds every fold's score in the layout of scikit-learn's
``GridSearchCV.cv_results_``.

A candidate that raises, returns a non-finite score or whose single fit takes
longer than ``max_fit_time`` seconds is recorded in ``cv_results_["status"]``
with a warning and skipped; it is never chosen.  The fits are not interrupted:
``max_fit_time`` stops a slow candidate after the first fold that exceeds it.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from pathlib import Path
from typing import ClassVar

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import KFold, StratifiedKFold

from calkit._validation import check_option
from calkit.metrics import brier_score, ece, nll
from calkit.posthoc._base import BaseCalibrator, check_fit_logits
from calkit.posthoc._persistence import ValueSpec
from calkit.posthoc.dirichlet import DirichletCalibration
from calkit.posthoc.ensemble import EnsembleTemperatureScaling
from calkit.posthoc.histogram import HistogramBinning
from calkit.posthoc.isotonic import IsotonicCalibration
from calkit.posthoc.scaling_binning import ScalingBinning
from calkit.posthoc.spline import SplineCalibration
from calkit.posthoc.temperature import MatrixScaling, TemperatureScaling, VectorScaling
from calkit.posthoc.venn_abers import VennAbersCalibration

#: candidate name -> calibrator class (built with its defaults)
CANDIDATES: dict[str, type[BaseCalibrator]] = {
    "ts": TemperatureScaling,
    "ets": EnsembleTemperatureScaling,
    "vs": VectorScaling,
    "ms": MatrixScaling,
    "dirichlet": DirichletCalibration,
    "spline": SplineCalibration,
    "histogram": HistogramBinning,
    "scaling_binning": ScalingBinning,
    "isotonic": IsotonicCalibration,
    "venn_abers": VennAbersCalibration,  # by name only: not a default candidate
}
#: the default candidate set: each default fit takes at most about a second on 5,000 x 100
DEFAULT_CANDIDATES = ("ts", "ets", "spline", "histogram", "scaling_binning", "isotonic")
#: vector scaling joins the default set up to this many classes (its L-BFGS fit takes about
#: 1 s on 5,000 x 10 but 4 s or more on 5,000 x 100, and the cross-validation fits it cv + 1 times)
VS_MAX_CLASSES = 20


def default_candidates(n_classes: int) -> tuple[str, ...]:
    """The candidate names ``AutoCalibration(candidates=None)`` uses for ``n_classes`` classes.

    Examples
    --------
    >>> from calkit.posthoc.auto import default_candidates
    >>> default_candidates(10)
    ('ts', 'ets', 'vs', 'spline', 'histogram', 'scaling_binning', 'isotonic')
    >>> "vs" in default_candidates(100)
    False
    """
    if n_classes <= VS_MAX_CLASSES:
        return DEFAULT_CANDIDATES[:2] + ("vs",) + DEFAULT_CANDIDATES[2:]
    return DEFAULT_CANDIDATES
#: criterion name -> calkit metric (lower is better)
CRITERIA = {"nll": nll, "ece": ece, "brier": brier_score}


def _named_candidates(candidates, n_classes: int) -> list[tuple[str, BaseCalibrator]]:
    """``(name, unfitted calibrator)`` pairs from names, instances or a name -> either dict."""
    if candidates is None:
        candidates = default_candidates(n_classes)
    if isinstance(candidates, str | BaseCalibrator):
        candidates = [candidates]
    if isinstance(candidates, Mapping):
        items = [(str(k), v) for k, v in candidates.items()]
    elif isinstance(candidates, Sequence):
        items = [(None, v) for v in candidates]
    else:
        raise TypeError("candidates must be None, a sequence of names or calibrators, or a "
                        f"dict name -> calibrator; got {type(candidates).__name__}")
    if not items:
        raise ValueError("candidates must not be empty")
    out, seen = [], set()
    for name, value in items:
        if isinstance(value, str):
            if value not in CANDIDATES:
                raise ValueError(f"unknown candidate {value!r}; choose from "
                                 f"{sorted(CANDIDATES)} or pass a calibrator instance")
            est, default_name = CANDIDATES[value](), value
        elif isinstance(value, BaseCalibrator) and not isinstance(value, AutoCalibration):
            est, default_name = clone(value), type(value).__name__
        else:
            raise TypeError(f"candidates must be names or calkit calibrators, got {value!r}")
        name = name or default_name
        base, i = name, 2
        while name in seen:  # the same class twice (different settings): number them
            name, i = f"{base}_{i}", i + 1
        seen.add(name)
        out.append((name, est))
    return out


class AutoCalibration(BaseCalibrator):
    """Cross-validated choice of a post-hoc calibrator, refitted on all the data.

    Parameters
    ----------
    candidates : sequence or dict, optional
        Names from :data:`CANDIDATES` (``"ts"``, ``"ets"``, ``"vs"``, ``"ms"``,
        ``"dirichlet"``, ``"spline"``, ``"histogram"``, ``"scaling_binning"``,
        ``"isotonic"``), calkit calibrator instances (cloned), or a dict
        ``name -> name or instance``.  Default (:func:`default_candidates`):
        temperature scaling, ETS, spline, histogram binning, scaling-binning and
        isotonic regression, each fitted in about a second or less on 5,000 x
        100 logits, plus vector scaling for up to :data:`VS_MAX_CLASSES`
        classes.  Matrix scaling and Dirichlet calibration are left out of the
        default: with ``K^2`` parameters a fit takes seconds to minutes for many
        classes, and the cross-validation fits each candidate up to ``cv + 1``
        times (Dirichlet's own regularisation search nests a second
        cross-validation inside).  Add them by name when ``K`` is small.
    criterion : {"nll", "ece", "brier"}, default="nll"
        Held-out score to minimise: :func:`calkit.nll`, :func:`calkit.ece`
        (top-label, 15 equal-width bins) or :func:`calkit.brier_score`.
    cv : int or cross-validation splitter, default=5
        Number of folds (stratified by label when every class has at least
        ``cv`` samples, else plain shuffled folds), or any object with
        ``split(X, y)`` such as a scikit-learn splitter.
    random_state : int, default=0
        Seed of the fold assignment.
    se_rule : float, default=1.0
        Preference for the earlier candidates (the default list starts with
        temperature scaling, the fewest parameters): the choice is the first
        candidate, in the given order, whose mean held-out criterion exceeds the
        lowest mean by at most ``se_rule`` standard errors of its per-fold
        differences from that best candidate (a paired one-standard-error rule,
        after Breiman et al. 1984).  ``0`` takes the lowest mean.  A later
        candidate must win clearly across the folds to be chosen, which guards
        against differences the folds cannot resolve.
    max_fit_time : float or None, default=10.0
        Seconds one fit of a candidate may take; a candidate whose fit exceeds it
        is dropped after that fold (recorded, with a warning).  None: no limit.

    Attributes
    ----------
    cv_results_ : dict of arrays
        One entry per candidate, as ``GridSearchCV.cv_results_``:
        ``param_candidate``, ``params``, ``split{i}_test_score``,
        ``mean_test_score``, ``std_test_score``, ``rank_test_score`` (scores
        are *minus* the criterion, so higher is better as in scikit-learn),
        ``mean_fit_time``, ``std_fit_time``, ``mean_score_time``,
        ``std_score_time``, and ``status`` (``"ok"``, or why it was skipped).
        A skipped candidate has NaN scores and the last rank.
    best_candidate_ : str
        Name of the chosen candidate.
    best_index_ : int
        Its row in ``cv_results_`` (not necessarily rank 1: see ``se_rule``).
    best_score_ : float
        Its mean held-out criterion (lower is better).
    best_calibrator_ : BaseCalibrator
        The chosen candidate refitted on all the data; ``predict_proba`` and
        ``predict`` delegate to it.
    n_classes_ : int

    Notes
    -----
    Takes logits ``(N, K)`` and integer labels like every multiclass
    calibrator.  :meth:`save` writes ``best_calibrator_`` (the cross-validation
    table is not saved), so :func:`calkit.posthoc.load_calibrator` returns the
    chosen calibrator itself, which predicts exactly as this object.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.auto import AutoCalibration
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(2000, 5)) * 3
    >>> y = np.array([rng.choice(5, p=np.exp(r) / np.exp(r).sum()) for r in z / 2])
    >>> auto = AutoCalibration(candidates=["ts", "histogram", "isotonic"]).fit(z, y)
    >>> auto.best_candidate_
    'ts'
    >>> auto.cv_results_["rank_test_score"].tolist()
    [1, 3, 2]
    >>> auto.predict_proba(z[:2]).shape
    (2, 5)
    """

    # never loaded as such: ``save`` writes ``best_calibrator_`` itself
    _fitted_spec: ClassVar[dict[str, ValueSpec]] = {
        "best_calibrator_": ValueSpec("unsaved"), "best_index_": ValueSpec("unsaved"),
        "best_candidate_": ValueSpec("unsaved"), "best_score_": ValueSpec("unsaved"),
        "cv_results_": ValueSpec("unsaved"), "n_classes_": ValueSpec("int", ge=2, dim="K")}

    def __init__(self, candidates=None, criterion: str = "nll", cv=5, random_state: int = 0,
                 se_rule: float = 1.0, max_fit_time: float | None = 10.0):
        self.candidates = candidates
        self.criterion = criterion
        self.cv = cv
        self.random_state = random_state
        self.se_rule = se_rule
        self.max_fit_time = max_fit_time

    # ------------------------------------------------------------------ checks
    def _folds(self, z, labels) -> list[tuple[np.ndarray, np.ndarray]]:
        cv = self.cv
        if hasattr(cv, "split") and not isinstance(cv, str | Integral):
            return [(np.asarray(a), np.asarray(b)) for a, b in cv.split(z, labels)]
        if isinstance(cv, bool) or not isinstance(cv, Integral) or cv < 2:
            raise ValueError(f"cv must be an integer >= 2 or a splitter, got {cv!r}")
        if len(labels) < cv:
            raise ValueError(f"cv={cv} folds need at least {cv} samples, got {len(labels)}")
        counts = np.bincount(labels, minlength=z.shape[1])
        stratify = counts[counts > 0].min() >= cv
        splitter = (StratifiedKFold if stratify else KFold)(
            int(cv), shuffle=True, random_state=self.random_state)
        return list(splitter.split(z, labels))

    def _check_params(self) -> None:
        check_option(self.criterion, "criterion", tuple(CRITERIA))
        t = self.max_fit_time
        if t is not None and (isinstance(t, bool) or not isinstance(t, Real) or not t > 0):
            raise ValueError(f"max_fit_time must be a positive number or None, got {t!r}")
        if isinstance(self.random_state, bool) or not isinstance(self.random_state, Integral):
            raise ValueError(f"random_state must be an integer, got {self.random_state!r}")
        r = self.se_rule
        if isinstance(r, bool) or not isinstance(r, Real) or not r >= 0:
            raise ValueError(f"se_rule must be a non-negative number, got {r!r}")

    # ------------------------------------------------------------------ fitting
    def _run_candidate(self, name, est, z, labels, folds, metric):
        """Fold scores, fit and score times and status of one candidate."""
        scores = np.full(len(folds), np.nan)
        fit_times = np.full(len(folds), np.nan)
        score_times = np.full(len(folds), np.nan)
        status = "ok"
        for i, (train, test) in enumerate(folds):
            try:
                start = time.perf_counter()
                fitted = clone(est).fit(z[train], labels[train])
                fit_times[i] = time.perf_counter() - start
                start = time.perf_counter()
                scores[i] = float(metric(labels[test], fitted.predict_proba(z[test])))
                score_times[i] = time.perf_counter() - start
            except Exception as exc:  # a failing candidate is recorded, never fatal
                status = f"failed in fold {i}: {type(exc).__name__}: {exc}"
                break
            if not np.isfinite(scores[i]):
                status = f"non-finite {self.criterion} in fold {i}"
                break
            if self.max_fit_time is not None and fit_times[i] > self.max_fit_time:
                status = (f"too slow: a fit took {fit_times[i]:.1f} s > max_fit_time="
                          f"{self.max_fit_time:g} s")
                break
        if status != "ok":
            warnings.warn(f"AutoCalibration: candidate {name!r} skipped ({status})",
                          FitFailedWarning, stacklevel=3)
            scores[:] = np.nan
        return scores, fit_times, score_times, status

    def fit(self, X, y) -> AutoCalibration:
        """Cross-validate the candidates on logits ``X`` (N, K) and labels ``y``, refit the best."""
        self._check_params()
        for name in ("best_calibrator_", "best_index_", "best_candidate_", "best_score_"):
            self.__dict__.pop(name, None)  # a failed refit must not leave an earlier choice
        z, labels = check_fit_logits(X, y, keep_float32=True)
        named = _named_candidates(self.candidates, int(z.shape[1]))
        folds = self._folds(z, labels)
        metric = CRITERIA[self.criterion]
        runs = [self._run_candidate(name, est, z, labels, folds, metric) for name, est in named]
        self.cv_results_ = self._results(named, runs, len(folds))
        mean = -self.cv_results_["mean_test_score"]
        order = self._preference(named, runs, mean)
        if not order:
            detail = "; ".join(f"{n}: {r[3]}" for (n, _), r in zip(named, runs, strict=True))
            raise ValueError(f"every AutoCalibration candidate failed ({detail})")
        for i in order:  # refit the best; should that fail, the next best
            try:
                self.best_calibrator_ = clone(named[i][1]).fit(z, labels)
            except Exception as exc:
                self.cv_results_["status"][i] = f"refit failed: {type(exc).__name__}: {exc}"
                warnings.warn(f"AutoCalibration: refitting {named[i][0]!r} on all the data "
                              f"failed ({exc}); trying the next best", FitFailedWarning,
                              stacklevel=2)
                continue
            self.best_index_ = int(i)
            break
        else:
            raise ValueError("AutoCalibration could not refit any candidate on all the data")
        self.best_candidate_ = named[self.best_index_][0]
        self.best_score_ = float(mean[self.best_index_])
        self.n_classes_ = int(z.shape[1])
        return self

    def _preference(self, named, runs, mean) -> list[int]:
        """Candidate rows in the order of choice: the ``se_rule`` pick first, then by mean."""
        ok = [i for i in np.argsort(np.where(np.isnan(mean), np.inf, mean), kind="stable")
              if np.isfinite(mean[i])]
        if not ok:
            return ok
        scores = np.array([r[0] for r in runs])
        best = scores[ok[0]]
        n = scores.shape[1]
        for i in sorted(ok):  # the given order: the first close enough to the best wins
            d = scores[i] - best
            se = d.std(ddof=1) / np.sqrt(n) if n > 1 else 0.0
            if d.mean() <= self.se_rule * se:
                return [i] + [j for j in ok if j != i]
        return ok  # pragma: no cover - the best itself always qualifies

    def _results(self, named, runs, n_folds: int) -> dict:
        scores = np.array([r[0] for r in runs])
        fit_t = np.array([r[1] for r in runs])
        score_t = np.array([r[2] for r in runs])
        mean = scores.mean(axis=1)
        finite = np.isfinite(mean)
        # rank as GridSearchCV: 1 = best, ties share the lowest rank, skipped ones last
        crit = np.where(finite, mean, np.inf)
        rank = np.array([1 + int(np.sum(crit < c)) for c in crit])
        rank[~finite] = int(finite.sum()) + 1
        out = {"param_candidate": np.array([n for n, _ in named], dtype=object),
               "params": [{"candidate": n} for n, _ in named]}
        for i in range(n_folds):
            out[f"split{i}_test_score"] = -scores[:, i]
        out["mean_test_score"] = -mean
        out["std_test_score"] = scores.std(axis=1)
        out["rank_test_score"] = rank.astype(np.int32)
        with warnings.catch_warnings():  # a candidate skipped in fold 0 has no times at all
            warnings.simplefilter("ignore", RuntimeWarning)
            out["mean_fit_time"] = np.nanmean(fit_t, axis=1)
            out["std_fit_time"] = np.nanstd(fit_t, axis=1)
            out["mean_score_time"] = np.nanmean(score_t, axis=1)
            out["std_score_time"] = np.nanstd(score_t, axis=1)
        out["status"] = np.array([r[3] for r in runs], dtype=object)
        return out

    # ------------------------------------------------------------------ use
    def cv_table(self) -> str:
        """The cross-validation results as a Markdown table, best first.

        Returns
        -------
        str
            One row per candidate: rank, name, mean and standard deviation of the
            held-out criterion over the folds, mean fit time, status.

        Examples
        --------
        >>> import numpy as np
        >>> from calkit.posthoc.auto import AutoCalibration
        >>> rng = np.random.default_rng(0)
        >>> z = rng.normal(size=(500, 3)) * 2
        >>> y = np.where(rng.random(500) < 0.7, z.argmax(1), rng.integers(0, 3, 500))
        >>> auto = AutoCalibration(candidates=["ts", "histogram"], cv=3).fit(z, y)
        >>> print(auto.cv_table().splitlines()[0])
        | rank | candidate | mean nll | std | fit time (s) | status |
        """
        self._check_fitted()
        r = self.cv_results_
        lines = [f"| rank | candidate | mean {self.criterion} | std | fit time (s) | status |",
                 "|---:|---|---:|---:|---:|---|"]
        for i in np.argsort(r["rank_test_score"], kind="stable"):
            mean = -r["mean_test_score"][i]
            cells = [str(r["rank_test_score"][i]), str(r["param_candidate"][i]),
                     f"{mean:.4f}" if np.isfinite(mean) else "-",
                     f"{r['std_test_score'][i]:.4f}" if np.isfinite(mean) else "-",
                     f"{r['mean_fit_time'][i]:.3f}" if np.isfinite(r["mean_fit_time"][i])
                     else "-", str(r["status"][i])]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def predict_proba(self, X):
        """Calibrated probabilities of the chosen calibrator (``best_calibrator_``)."""
        self._check_fitted()
        return self.best_calibrator_.predict_proba(X)

    def predict(self, X):
        """Predicted classes of the chosen calibrator (``best_calibrator_``)."""
        self._check_fitted()
        return self.best_calibrator_.predict(X)

    def save(self, path: str | Path) -> None:
        """Save ``best_calibrator_`` (see Notes): loading it gives the chosen calibrator."""
        self._check_fitted()
        self.best_calibrator_.save(path)
