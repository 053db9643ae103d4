"""Label-wise reliability diagrams: every panel draws the per-label table of the metric."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logit

from calkit import ece

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from calkit.plotting import plot_multilabel_reliability  # noqa: E402

rng = np.random.default_rng(3)
P = rng.uniform(0.01, 0.99, size=(1500, 5))
Y = (rng.uniform(size=(1500, 5)) < P ** np.array([1.0, 1.5, 2.0, 0.5, 3.0])).astype(int)


def test_one_panel_per_label_with_its_own_table_and_error():
    names = ["cat", "dog", "car", "sky", "tree"]
    disp = plot_multilabel_reliability(Y, P, label_names=names, n_bins=8)
    try:
        assert len(disp.axes_) == 5 and disp.labels_ == [0, 1, 2, 3, 4]
        for j in range(5):
            want = ece(Y[:, j], P[:, j], n_bins=8, view="positive")
            assert np.isclose(disp.errors[j], want)
            t = disp.tables[j]
            heights = [b.get_height() for b in disp.bars_[j]]
            np.testing.assert_allclose(heights, t.mean_target[t.nonempty])
            np.testing.assert_allclose(t.count.sum(), 1500)
        titles = [a.get_title() for a in disp.axes_]
        assert [t.split("\n")[0] for t in titles] == names
        assert f"ECE {100 * disp.errors[2]:.2f}%" in titles[2]
        assert "count: label present" in disp.legend_texts()
        assert disp.hist_axes_[0].get_xlabel() == "Predicted probability of the label"
        assert disp.axes_[0].get_ylabel() == "Fraction with the label"
    finally:
        plt.close(disp.figure_)


def test_worst_labels_chosen_order_and_logits():
    disp = plot_multilabel_reliability(Y, P, max_panels=3, n_worst=2)
    errors = [ece(Y[:, j], P[:, j], n_bins=10, view="positive") for j in range(5)]
    assert disp.labels_ == list(np.argsort(errors)[::-1][:2])
    plt.close(disp.figure_)
    disp = plot_multilabel_reliability(Y, logit(P), logits=True, labels=[4, 0])
    assert disp.labels_ == [4, 0] and np.isclose(disp.errors[0], errors[4])
    plt.close(disp.figure_)


@pytest.mark.parametrize("kwargs, match", [
    (dict(labels=[5]), "labels"), (dict(labels=[]), "labels"),
    (dict(label_names=["a"]), "label_names")])
def test_bad_panel_choices_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot_multilabel_reliability(Y, P, **kwargs)
