"""Package-level promises: light import, bundled example, public names documented."""

from __future__ import annotations

import inspect
import subprocess
import sys

import calkit


def test_import_needs_neither_torch_nor_matplotlib():
    code = ("import sys, calkit; calkit.ece([0, 1], [0.2, 0.9], n_bins=2, view='positive'); "
            "print(sorted(m for m in ('torch', 'matplotlib', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bundled_example_is_real_and_loads_without_pickle():
    logits, labels = calkit.datasets.load_example()
    assert logits.shape == (2000, 10) and labels.min() == 0 and labels.max() == 9
    acc = calkit.accuracy(labels, calkit.softmax(logits))
    assert 0.9 < acc < 0.97  # a ResNet-50 on CIFAR-10


def test_every_public_name_has_a_docstring_with_an_example():
    for name in calkit.__all__:
        obj = getattr(calkit, name)
        doc = inspect.getdoc(obj) or ""
        assert doc, f"calkit.{name} has no docstring"
        if inspect.isfunction(obj):
            assert "Examples" in doc, f"calkit.{name} has no Examples section"
