"""KDE calibration errors (issue 16): Mix-n-Match KDE-ECE and Popordanoska's ECE^KDE.

Run: ``python benchmarks/bench_kde_ece.py [--quick] [--agreement]``.

Times :func:`calkit.metrics.kde_ece` at N = 1e4, 1e5, 1e6 and
:func:`calkit.metrics.canonical_kde_ece` at N = 2e3, 1e4, each with calkit's own
binned ``ece`` (15 bins, top label) on the same data in the same run as the
baseline (``ratio`` = time / ece time).  When KDEpy is installed, the Mix-n-Match
reference convention evaluated with KDEpy's ``FFTKDE`` (the package the paper's
code uses; its per-grid-point loop written with direct indexing, which is faster
than the original's ``argmin`` search) is timed too, with its value, so the
agreement shows.

``--agreement`` prints instead, for the real outputs in ``../shared/data``, calkit's
KDE-ECE next to the KDEpy reference convention, the binned ECE and ECE^KDE (the table
of ``docs/user_guide/ece.md``).

Data: the real CIFAR-10 ResNet-50 test outputs (10,000 x 10) from ``../shared/data``
when present (else the bundled 2,000-sample example), resampled with replacement
to each size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _real_data import CIFAR10_RESNET50, cifar10_probabilities  # noqa: E402
from _timing import interleaved_medians, machine, print_table  # noqa: E402

from calkit import ece, softmax  # noqa: E402
from calkit.metrics import canonical_kde_ece, kde_ece  # noqa: E402


def kdepy_mixnmatch(s: np.ndarray, t: np.ndarray) -> float:
    """The Mix-n-Match reference convention on KDEpy's FFTKDE (order 1)."""
    from KDEpy import FFTKDE

    x = np.linspace(-0.6, 1.6, 2 ** 14)
    h = np.std(s[t == 1]) * (2 * s.size) ** -0.2

    def density(d):
        m = np.concatenate([-d[d < 0.5], d, 2 - d[d >= 0.5]])
        out = FFTKDE(bw=h, kernel="triweight").fit(m).evaluate(x)
        out[(x <= 0) | (x >= 1)] = 0
        return 2 * out

    f1, f = density(s[t == 1]), density(s)
    integrand = np.zeros_like(x)
    pi = t.mean()
    for i in range(x.size):
        if max(f1[i], f[i]) > 1e-6:
            with np.errstate(divide="ignore"):
                acc = min(pi * f1[i] / f[i], 1.0)
            integrand[i] = abs(x[i] - acc) * f[i]
        elif i > 1:
            integrand[i] = integrand[i - 1]
    inside = (x >= 0) & (x <= 1)
    return float(np.trapezoid(integrand[inside], x[inside])
                 / np.trapezoid(f[inside], x[inside]))


def _have_kdepy() -> bool:
    try:
        import KDEpy  # noqa: F401
    except ImportError:
        return False
    return True


def run(mnm_sizes, pop_sizes, repeat):
    prob, labels, source = cifar10_probabilities()
    rng = np.random.default_rng(0)
    rows = []
    kdepy = _have_kdepy()
    for estimator, sizes in (("kde_ece", mnm_sizes), ("canonical_kde_ece", pop_sizes)):
        for n in sizes:
            idx = rng.integers(0, len(labels), n)
            p, y = prob[idx], labels[idx]
            fns = {"ece": lambda p=p, y=y: ece(y, p)}
            if estimator == "kde_ece":
                fns["calkit"] = lambda p=p, y=y: kde_ece(y, p)
                s, t = p.max(1), (p.argmax(1) == y).astype(np.float64)
                if kdepy and n <= 100_000:
                    fns["KDEpy reference"] = lambda s=s, t=t: kdepy_mixnmatch(s, t)
            else:
                fns["calkit"] = lambda p=p, y=y: canonical_kde_ece(y, p, bandwidth=0.1)
            times = interleaved_medians(fns, repeat=repeat if n < 1_000_000 else 3)
            value = float(fns["calkit"]())
            rows.append(dict(estimator=estimator, n=f"{n:,}", value=value, ms=times["calkit"] * 1e3,
                             ece_ms=times["ece"] * 1e3, ratio=times["calkit"] / times["ece"]))
            if "KDEpy reference" in fns:
                ref = fns["KDEpy reference"]()
                rows.append(dict(estimator="  KDEpy reference", n=f"{n:,}", value=ref,
                                 ms=times["KDEpy reference"] * 1e3, ece_ms=times["ece"] * 1e3,
                                 ratio=times["KDEpy reference"] / times["ece"],
                                 abs_diff=f"{abs(ref - value):.1e}"))
    return rows, source


DATA = CIFAR10_RESNET50.parent.parent


def real_data():
    """(name, probabilities, labels) of the real outputs the user guide's table uses."""
    ce = DATA / "cifar10_resnet50_ce_vs_focal"
    for name, f in (("CIFAR-10 ResNet-50, cross-entropy",
                     ce / "resnet50_cifar10_cross_entropy_test_0.9_vanilla.npz"),
                    ("CIFAR-10 ResNet-50, focal loss",
                     ce / "resnet50_cifar10_focal_loss_test_0.9_vanilla.npz")):
        with np.load(f, allow_pickle=False) as d:
            yield name, softmax(d["logits"].astype(np.float64)), d["labels"]
    with np.load(DATA / "cifar_softmax_netcal" / "densenet-bc-100-cifar-100.npz",
                 allow_pickle=False) as d:
        yield "CIFAR-100 DenseNet-BC-100", d["predictions"].astype(np.float64), d["ground_truth"]
    for name, stem in (("20 Newsgroups (under-confident)", "20news"), ("MNIST", "mnist"),
                       ("IMDB (binary)", "imdb")):
        folder = DATA / "cv_probs_label_errors"
        p = np.load(folder / f"{stem}_test_set_pyx.npy", allow_pickle=False).astype(np.float64)
        y = np.load(folder / f"{stem}_test_set_original_labels.npy", allow_pickle=False)
        yield name, p / p.sum(1, keepdims=True), y.astype(np.int64)


def agreement():
    rows = []
    for name, p, y in real_data():
        r = kde_ece(y, p)
        view = r.settings["view"]
        if view == "top_label":
            s, t = p.max(1), (p.argmax(1) == y).astype(np.float64)
        else:
            s, t = p[:, 1], (y == 1).astype(np.float64)
        ref = kdepy_mixnmatch(s, t) if _have_kdepy() else float("nan")
        sub = np.random.default_rng(0).choice(len(y), 2000, replace=False)
        canonical = canonical_kde_ece(y[sub], p[sub], bandwidth=0.1, view="canonical")
        rows.append(dict(data=name, n=f"{len(y):,}", view=view, kde_ece=f"{float(r):.6f}",
                         kdepy_ref=f"{ref:.6f}", abs_diff=f"{abs(ref - float(r)):.0e}",
                         bandwidth=f"{r.bandwidth:.4f}",
                         ece_15=f"{float(ece(y, p, view=view)):.6f}",
                         canonical_2000=f"{float(canonical):.4f}"))
    print_table(rows, list(rows[0]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--agreement", action="store_true",
                        help="real-data agreement table instead of timings")
    args = parser.parse_args(argv)
    if args.agreement:
        agreement()
        return
    mnm = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    pop = [2_000] if args.quick else [2_000, 10_000]
    rows, source = run(mnm, pop, repeat=3 if args.quick else 5)
    print(f"machine: {machine()}  (shared CPU: timings are noisy, read the ratios)")
    print(f"data: {source}, resampled; top label (kde_ece), canonical h = 0.1 "
          f"(canonical_kde_ece); ratio = time / calkit.ece time (15 bins) in the same run")
    print_table(rows, ["estimator", "n", "value", "ms", "ece_ms", "ratio", "abs_diff"])


if __name__ == "__main__":
    main()
