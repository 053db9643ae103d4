"""The documentation's machinery (docs/conf.py), its gallery numbers, and (slow) a full build."""

from __future__ import annotations

import inspect
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from conftest import shared_path

pytest.importorskip("numpydoc", reason="docs requirements (docs/requirements.txt) not installed")

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


@pytest.fixture(scope="module")
def conf():
    """docs/conf.py as a namespace (its environment variables restored afterwards)."""
    saved = dict(os.environ)
    try:
        yield runpy.run_path(str(DOCS / "conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)


# ------------------------------------------------------------------------------ API pages
def _public_objects(module_name: str) -> dict[str, object]:
    import importlib

    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, o in vars(module).items() if not n.startswith("_")
                 and (inspect.isfunction(o) or inspect.isclass(o))
                 and o.__module__ == module_name]
    return {n: getattr(module, n) for n in names}


def test_api_pages_document_every_public_name_once(conf):
    pages = conf["api_pages"]()
    modules = [m.__name__ for m in conf["public_modules"]()]
    assert list(pages) == modules
    assert modules[:3] == ["calkit", "calkit.binning", "calkit.metrics"]
    directive = re.compile(r"^\.\. auto(?:class|function|data):: (\w+)$", re.M)
    documented: dict[int, list[str]] = {}
    for module_name, text in pages.items():
        for name in directive.findall(text):
            documented.setdefault(id(_public_objects(module_name)[name]), []).append(
                f"{module_name}.{name}")
    for module_name in modules:  # independent walk over each module's own public names
        for name, obj in _public_objects(module_name).items():
            homes = documented.get(id(obj), [])
            assert len(homes) == 1, f"{module_name}.{name} documented on {homes}"
            if homes[0] != f"{module_name}.{name}":  # documented elsewhere: linked from here
                assert f":py:obj:`{name} <{homes[0]}>`" in pages[module_name]


def test_api_top_level_names_link_to_their_home(conf):
    page = conf["api_pages"]()["calkit"]
    assert ":py:obj:`ece <calkit.metrics.ece>`" in page
    assert ":py:obj:`bin_table <calkit.binning.bin_table>`" in page


def test_module_shadowed_by_a_documented_object_is_not_indexed(conf):
    import types

    module = types.ModuleType("pkg.tool")
    module.__all__ = []
    page = conf["_module_page"](module, {1: "pkg.tool", 2: "pkg.other"})
    assert ".. automodule:: pkg.tool\n   :no-members:\n   :no-index:\n" in page
    page = conf["_module_page"](module, {2: "pkg.other"})
    assert ":no-index:" not in page


def test_api_skips_modules_that_do_not_import(conf, monkeypatch):
    order = conf["API_ORDER"] + ("calkit.not_written_yet",)
    monkeypatch.setitem(conf["public_modules"].__globals__, "API_ORDER", order)
    names = [m.__name__ for m in conf["public_modules"]()]
    assert "calkit.not_written_yet" not in names and "calkit.binning" in names


def test_summary_is_the_whole_first_paragraph(conf):
    def f():
        """First line, with ``a <= ... <= b``.
        continued here.

        Body.
        """

    assert conf["_summary"](f) == "First line, with ``a <= ... <= b``. continued here."


def test_summary_of_a_constant_is_not_its_types_docstring(conf):
    assert conf["_summary"]({"ts": "TemperatureScaling"}) == "constant (``dict``)"


def test_has_examples(conf):
    def with_examples():
        """Do it.

        Examples
        --------
        >>> 1 + 1
        2
        """

    def without():
        """Do it.

        Returns
        -------
        int
        """

    assert conf["has_examples"](with_examples)
    assert not conf["has_examples"](without)


def test_known_names_without_examples_only_shrinks(conf):
    missing = set(conf["names_without_examples"]())
    known = conf["KNOWN_WITHOUT_EXAMPLES"]
    gained = sorted(known - missing)
    assert not gained, f"remove from KNOWN_WITHOUT_EXAMPLES in docs/conf.py: {gained}"
    new = sorted(missing - known)
    assert not new, f"public names without an Examples section: {new}"


# ------------------------------------------------------------------------------ toctrees
def test_complete_toctree_drops_absent_and_appends_extra_pages(conf, tmp_path):
    for page in ("calibration.md", "llm.md", "extra.md", "index.md"):
        (tmp_path / page).write_text("# x\n")
    text = "intro\n\n```{toctree}\n:maxdepth: 2\n\ncalibration\nece\nllm\n```\n"
    out = conf["complete_toctree"](text, tmp_path, "user_guide/index")
    assert out == "intro\n\n```{toctree}\n:maxdepth: 2\n\ncalibration\nllm\nextra\n```\n"


def test_real_user_guide_toctree_lists_exactly_its_pages(conf):
    folder = DOCS / "user_guide"
    out = conf["complete_toctree"]((folder / "index.md").read_text(), folder, "user_guide/index")
    body = re.search(r"```\{toctree\}\n(.*?)```", out, re.S).group(1)
    entries = [ln for ln in body.splitlines() if ln and not ln.startswith(":")]
    assert entries[0] == "calibration"
    assert sorted(entries) == sorted(p.stem for p in folder.glob("*.md") if p.stem != "index")


def test_links_to_absent_planned_pages_become_text(conf, tmp_path):
    (tmp_path / "user_guide").mkdir()
    (tmp_path / "user_guide" / "ece.md").write_text("# x\n")
    (tmp_path / "user_guide" / "index.md").write_text(
        "# Guide\n\n```{toctree}\n:maxdepth: 2\n\nece\nposthoc\n```\n")
    assert conf["planned_pages"](tmp_path) == {"user_guide/ece", "user_guide/posthoc"}
    app = type("App", (), {"srcdir": str(tmp_path)})()
    source = ["see {doc}`the ECE <ece>`, {doc}`methods <posthoc>`, {doc}`more\n methods "
              "</user_guide/posthoc>` and {doc}`typo <postoc>` or "
              "{doc}`g <../auto_examples/index>`"]
    conf["_unlink_absent_pages"](app, "user_guide/calibration", source)
    assert source[0] == ("see {doc}`the ECE <ece>`, methods, more\n methods and "
                         "{doc}`typo <postoc>` or {doc}`g <../auto_examples/index>`")


# ------------------------------------------------------------------------------ requirements
def test_missing_requirements(conf):
    assert conf["missing_requirements"](["calkit.ece", "calkit.binning.bin_table",
                                         "numpy.linalg.norm"]) == []
    absent = ["calkit.no_such_module.X", "calkit.metrics.no_such_name", "nope.at_all"]
    assert conf["missing_requirements"](absent) == absent


def test_why_missing_names_what_is_missing(conf, monkeypatch):
    why = conf["why_missing"]
    assert why("calkit.no_such_name") == "calkit.no_such_name (not in this version of calkit)"
    assert why("surely_not_a_package_here") == "surely_not_a_package_here (not installed)"
    # without torch: torch itself is "not installed", calkit.training "needs torch"
    monkeypatch.setitem(sys.modules, "torch", None)
    for name in [m for m in sys.modules if m.startswith("calkit.training")]:
        monkeypatch.delitem(sys.modules, name)
    assert why("torch") == "torch (not installed)"
    assert why("calkit.training.FocalLoss") == ("calkit.training.FocalLoss, which needs torch "
                                                "(not installed)")


def test_gallery_skips_examples_whose_needs_are_unmet(conf, monkeypatch, capsys):
    globs = conf["gallery_ignore_pattern"].__globals__
    monkeypatch.setitem(globs, "GALLERY_REQUIRES", {"plot_a.py": ("calkit.nothing_here",),
                                                    "plot_b.py": ("calkit.ece",)})
    pattern = conf["gallery_ignore_pattern"]()
    assert re.search(pattern, "/docs/examples/plot_a.py")
    assert not re.search(pattern, "/docs/examples/plot_b.py")
    assert re.search(pattern, "/docs/examples/__init__.py")
    assert "plot_a.py skipped, it needs calkit.nothing_here" in capsys.readouterr().out


def test_every_gallery_requirement_names_an_example():
    conf_text = (DOCS / "conf.py").read_text()
    for file in re.findall(r'"(plot_\w+\.py)":', conf_text):
        assert (DOCS / "examples" / file).exists(), file


# ------------------------------------------------------------------------------ gallery numbers
def _nll_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Brute-force reference: minimise the NLL over log T with scipy."""
    z = logits.astype(np.float64)

    def nll(u):
        return -log_softmax(z / np.exp(u), axis=1)[np.arange(len(labels)), labels].mean()

    return float(np.exp(minimize_scalar(nll, bounds=(-5, 5), method="bounded",
                                        options={"xatol": 1e-10}).x))


def _ece_loop(labels: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """Brute-force top-label ECE, equal-width bins (a, b], first bin [0, b]."""
    conf, correct = probs.max(1), probs.argmax(1) == labels
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        inside = (conf > lo) & (conf <= hi) if b else (conf >= lo) & (conf <= hi)
        if inside.any():
            total += inside.sum() * abs(conf[inside].mean() - correct[inside].mean())
    return total / len(labels)


def test_temperature_scaling_gallery_numbers(monkeypatch):
    pytest.importorskip("matplotlib")
    try:
        from calkit.posthoc import TemperatureScaling  # noqa: F401
    except ImportError:
        pytest.skip("calkit.posthoc.TemperatureScaling not available yet")
    data = shared_path("cifar_softmax_netcal").parent
    monkeypatch.setenv("CALKIT_SHARED_DATA", str(data))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    import matplotlib.pyplot as plt

    ns = runpy.run_path(str(DOCS / "examples" / "plot_temperature_scaling.py"))
    plt.close("all")
    rows = {(r[0], r[1]): r[2:] for r in ns["rows"]}
    names = ["CIFAR-10, ResNet-50", "CIFAR-100, DenseNet-BC-100", "20 Newsgroups"]
    assert sorted({r[0] for r in rows}) == sorted(names)
    for name in names:
        val_z, val_y, test_z, test_y = ns["available"][name]()
        t, acc, ece, nll, brier = rows[(name, "after")]
        assert t == pytest.approx(_nll_temperature(val_z, val_y), rel=1e-5)
        scaled = np.exp(log_softmax(test_z.astype(np.float64) / t, axis=1))
        assert ece == pytest.approx(_ece_loop(test_y, scaled), abs=1e-6)
        assert nll == pytest.approx(
            -np.log(scaled[np.arange(len(test_y)), test_y]).mean(), rel=1e-6)
        assert acc == rows[(name, "before")][1]  # TS never changes the predicted class
        assert ece < rows[(name, "before")][2] / 2  # what the page shows: ECE at least halved
    # The prose: T > 1 for the over-confident CIFAR models, T < 1 for 20 Newsgroups.
    assert rows[(names[0], "after")][0] > 1 and rows[(names[1], "after")][0] > 1
    assert rows[(names[2], "after")][0] < 1
    # The prose: 61 zero probabilities of the given label; smallest non-zero 1.75e-6.
    folder = data / "cv_probs_label_errors"
    p = np.load(folder / "20news_test_set_pyx.npy", allow_pickle=False)
    y = np.load(folder / "20news_test_set_original_labels.npy", allow_pickle=False)
    assert (p[np.arange(len(y)), y.astype(np.int64)] == 0).sum() == 61
    assert f"{p[p > 0].min():.3g}" == "1.75e-06"
    # ... and what a smallest-float clip does instead: the NLL optimum runs past T = 100.
    clipped = np.log(np.clip(p, np.finfo(np.float64).tiny, None))
    assert _nll_temperature(clipped, y.astype(np.int64)) > 100


# ------------------------------------------------------------------------------ full build
@pytest.mark.slow
@pytest.mark.parametrize("shared_data", ["present", "absent"])
def test_docs_build_with_warnings_as_errors(tmp_path, shared_data):
    """Build a copy of docs/ with -W, with one user-guide page removed, with or without data."""
    pytest.importorskip("sphinx_gallery")
    copy = tmp_path / "docs"
    shutil.copytree(DOCS, copy, ignore=shutil.ignore_patterns("_build", "api", "auto_examples"))
    (copy / "user_guide" / "posthoc.md").unlink(missing_ok=True)
    env = dict(os.environ, CALKIT_REPO=str(REPO), MPLBACKEND="Agg")
    if shared_data == "absent":
        env["CALKIT_SHARED_DATA"] = str(tmp_path / "no_shared_data")
    result = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q",
                             "-b", "html", str(copy), str(tmp_path / "html")],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    index = (tmp_path / "html" / "index.html").read_text()
    assert "getting_started.html" in index and "auto_examples/index.html" in index
    assert (tmp_path / "html" / "api" / "calkit.metrics.html").exists()
    # maths renders offline: MathJax is served from _static, no page names a CDN
    assert (tmp_path / "html" / "_static" / "mathjax" / "tex-chtml.js").exists()
    cdn = re.compile(r"https?://[^\s\"']*(cdn|mathjax|jsdelivr|unpkg|cdnjs)", re.I)
    loaders = 0
    for page in (tmp_path / "html").rglob("*.html"):
        text = page.read_text(errors="replace")
        assert not cdn.search(text), (page, cdn.search(text).group(0))
        for src in re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', text, re.I):
            assert "_static/mathjax/tex-chtml.js" in src and "//" not in src, (page, src)
            loaders += 1
    assert loaders > 0  # the pages with maths load the local copy
