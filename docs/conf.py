"""Sphinx configuration of the calkit documentation.

Build (from the repository root; offline, warnings are errors)::

    pip install -r docs/requirements.txt
    sh docs/build.sh      # sphinx-build -W --keep-going -b html docs docs/_build/html

Everything shown is computed at build time:

* the gallery scripts in ``docs/examples`` run through sphinx-gallery;
* ``calkit-run`` code blocks of the guide pages are executed (one namespace per page) and
  shown with what they printed and the figures they drew; ``calkit-console`` blocks run
  ``calkit ...`` command lines through :func:`calkit.cli.main`;
* the API pages (``docs/api/*.rst``, generated, not committed) list the public names of the
  modules that import in this build, and every module-level public function and class must
  have an ``Examples`` section (a warning, so an error under ``-W``).

Real model outputs come from ``../shared/data`` (or ``$CALKIT_SHARED_DATA``) when present;
blocks and examples that need them say so and fall back to, or are replaced by, the data
shipped inside calkit, so the build needs neither that folder nor the network.  Pages of the
user guide that other parts of the project have not written yet are simply absent (the guide's
table of contents is a glob) and links to them become plain text.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import os
import pkgutil
import re
import sys
import tempfile
import traceback
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

DOCS = Path(__file__).resolve().parent
# The repository whose calkit is documented (tests build a copy of docs/ elsewhere).
ROOT = Path(os.environ.get("CALKIT_REPO", DOCS.parent)).resolve()
sys.path.insert(0, str(ROOT))
# Real model outputs used by the gallery and the guide (optional).
os.environ.setdefault("CALKIT_SHARED_DATA", str(ROOT.parent / "shared" / "data"))
SHARED_DATA = Path(os.environ["CALKIT_SHARED_DATA"])

import calkit  # noqa: E402

project = "calkit"
author = "calkit developers"
copyright = "calkit developers"  # noqa: A001
version = release = calkit.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    # MathJax served from _static/mathjax (a copy packaged on PyPI), not from a CDN, so the
    # maths renders offline; tests/test_docs.py checks the built pages name no CDN.
    "sphinx-mathjax-offline",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "examples", "images/*.py", "api/*.inc", "Thumbs.db",
                    ".DS_Store", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip"]
templates_path: list[str] = []

html_theme = "furo"
html_title = f"calkit {release}"
html_static_path: list[str] = []

# Offline build: no intersphinx, no remote images, no remote scripts.
intersphinx_mapping: dict = {}
mathjax_path = "mathjax/tex-chtml.js"

# MyST: $...$ maths, ::: fences, anchors for headings (used by cross-page links).
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# API docstrings: numpydoc sections, no per-method stub pages.
autodoc_default_options = {"members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# numpydoc validation, as errors under -W: no public object without a docstring (GL08) and no
# documented parameter the signature lacks (PR02: stale docs).  Missing Examples sections are
# checked below, for module-level public names only (methods need none).
numpydoc_validation_checks = {"GL08", "PR02"}

# --------------------------------------------------------------------------------------------
# Gallery.  An example that needs a part of calkit still being written is left out of the
# build (with a message) until that part imports.

#: example file -> dotted names it needs
GALLERY_REQUIRES = {
    "plot_temperature_scaling.py": ("calkit.posthoc.TemperatureScaling",),
    "plot_calibrators.py": ("calkit.posthoc.TemperatureScaling", "calkit.posthoc.VectorScaling",
                            "calkit.posthoc.EnsembleTemperatureScaling",
                            "calkit.posthoc.SplineCalibration", "calkit.posthoc.HistogramBinning",
                            "calkit.posthoc.IsotonicCalibration", "sklearn"),
    "plot_consistency_bands.py": ("calkit.metrics.consistency_test",
                                  "calkit.posthoc.TemperatureScaling"),
    "plot_longtail.py": ("calkit.posthoc.TemperatureScaling",),
    "plot_adafocal_gamma.py": ("torch", "calkit.training.AdaFocalLoss"),
}


def _resolves(dotted: str) -> bool:
    """True when ``dotted`` (``package.module.attribute``) imports here."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def missing_requirements(names) -> list[str]:
    """The names of ``names`` that do not import in this build."""
    return [name for name in names if not _resolves(name)]


def why_missing(dotted: str) -> str:
    """What is missing for ``dotted``, in words: an uninstalled package, or a part of calkit.

    ``torch`` -> ``"torch (not installed)"``; ``calkit.training.FocalLoss`` without torch
    -> ``"calkit.training.FocalLoss, which needs torch (not installed)"``; a name calkit does
    not have -> ``"calkit.x (not in this version of calkit)"``.
    """
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        try:
            importlib.import_module(module)
        except ImportError as exc:
            cause = exc  # calkit re-raises a missing optional package with a hint: unwrap it
            while not isinstance(cause, ModuleNotFoundError) and cause.__cause__ is not None:
                cause = cause.__cause__
            absent = (getattr(cause, "name", None) or "").split(".")[0]
            if absent and absent != "calkit":
                return (f"{dotted} (not installed)" if absent == parts[0]
                        else f"{dotted}, which needs {absent} (not installed)")
            continue
        break
    if parts[0] != "calkit":
        return f"{dotted} (not installed)"
    return f"{dotted} (not in this version of calkit)"


def gallery_ignore_pattern() -> str:
    """sphinx-gallery ``ignore_pattern``: ``__init__.py`` and examples whose needs are unmet."""
    skipped = [file for file, needs in GALLERY_REQUIRES.items() if missing_requirements(needs)]
    for file in skipped:
        print(f"calkit docs: gallery example {file} skipped, it needs "
              f"{'; '.join(why_missing(n) for n in missing_requirements(GALLERY_REQUIRES[file]))}")
    return "|".join([r"__init__\.py"] + [re.escape(file) + "$" for file in skipped])


sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": gallery_ignore_pattern(),
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "show_memory": False,
    "min_reported_time": 10**9,
    "write_computation_times": False,
}

# --------------------------------------------------------------------------------------------
# API reference, generated from the package's public names.

API_DIR = DOCS / "api"
#: Modules in the order data flows through calkit; those that do not import are skipped.
API_ORDER = ("calkit", "calkit.binning", "calkit.metrics", "calkit.logits", "calkit.posthoc",
             "calkit.training", "calkit.plotting", "calkit.stream", "calkit.distributed",
             "calkit.chunked", "calkit.report", "calkit.io", "calkit.cli", "calkit.datasets",
             "calkit.integrations")

#: Public names allowed to lack an ``Examples`` section (none since 2026-11-25).  The build
#: warns (an error under -W) for any other public function or class without one, and
#: tests/test_docs.py checks both directions, so the set can only shrink.
KNOWN_WITHOUT_EXAMPLES: frozenset[str] = frozenset()


def _importable(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def public_modules() -> list:
    """calkit and every public (sub)module that imports here, in data-flow order."""
    found = {}
    for name in API_ORDER:
        module = _importable(name)
        if module is None:
            continue
        found[name] = module
        if hasattr(module, "__path__"):
            for info in pkgutil.iter_modules(module.__path__, prefix=name + "."):
                leaf = info.name.rsplit(".", 1)[-1]
                if not leaf.startswith("_") and info.name not in API_ORDER:
                    sub = _importable(info.name)
                    if sub is not None:
                        found[info.name] = sub
    return list(found.values())


def public_names(module) -> list[str]:
    """``__all__``, else the public functions and classes the module defines."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, obj in vars(module).items()
                 if not n.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
                 and getattr(obj, "__module__", None) == module.__name__]
    return sorted(names, key=str.lower)


def documented_objects() -> dict[str, object]:
    """Every public object once: ``"module.name"`` (its home page) -> object.

    An object's home is the first module after ``calkit`` itself, in :data:`API_ORDER`
    order, that makes it public (``calkit.ece`` is documented as ``calkit.metrics.ece``);
    names only ``calkit`` exports are documented there.
    """
    homes: dict[int, str] = {}
    objects: dict[str, object] = {}
    modules = public_modules()
    for module in modules[1:] + modules[:1]:
        for name in public_names(module):
            obj = getattr(module, name)
            if id(obj) not in homes:
                homes[id(obj)] = f"{module.__name__}.{name}"
                objects[homes[id(obj)]] = obj
    return objects


def has_examples(obj) -> bool:
    """Whether the numpydoc docstring of ``obj`` has a non-empty ``Examples`` section."""
    from numpydoc.docscrape import NumpyDocString

    doc = inspect.getdoc(obj) or ""
    return bool("".join(NumpyDocString(doc)["Examples"]).strip())


def names_without_examples() -> list[str]:
    """Public functions and classes whose docstring has no ``Examples`` section."""
    return sorted(name for name, obj in documented_objects().items()
                  if (inspect.isfunction(obj) or inspect.isclass(obj)) and not has_examples(obj))


def _summary(obj) -> str:
    """First paragraph of the docstring, on one line (the numpydoc short summary)."""
    if not (inspect.isclass(obj) or callable(obj) or inspect.ismodule(obj)):
        return f"constant (``{type(obj).__name__}``)"  # not the docstring of its type
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n", 1)[0].split()) or "(no docstring)"


def api_pages() -> dict[str, str]:
    """reST text of one page per public module, by module name."""
    objects = documented_objects()
    home = {id(obj): target for target, obj in objects.items()}
    return {module.__name__: _module_page(module, home) for module in public_modules()}


def _module_page(module, home: dict) -> str:
    name = module.__name__
    # A module re-exported under its own name by its package (calkit.metrics.bootstrap, the
    # function) is not indexed, so the name refers to the object.
    shadowed = name in home.values()
    lines = [name, "=" * len(name), "", f".. automodule:: {name}", "   :no-members:"]
    lines += ["   :no-index:"] if shadowed else []
    lines += ["", f".. currentmodule:: {name}", ""]
    own, elsewhere = [], []
    for attr in public_names(module):
        obj = getattr(module, attr)
        target = home.get(id(obj), f"{name}.{attr}")
        (own if target == f"{name}.{attr}" else elsewhere).append((attr, obj, target))
    if own:
        lines += [".. list-table::", "   :widths: 30 70", ""]
        for attr, obj, _ in own:
            lines += [f"   * - :py:obj:`{attr}`", f"     - {_summary(obj)}"]
        lines += [""]
        for attr, obj, _ in own:
            if inspect.isclass(obj):
                lines += [f".. autoclass:: {attr}", "   :members:", ""]
            elif callable(obj):
                lines += [f".. autofunction:: {attr}", ""]
            else:
                lines += [f".. autodata:: {attr}", ""]
    if elsewhere:
        lines += ["Also available here", "-------------------", ""]
        lines += [f"- :py:obj:`{attr} <{target}>` (documented as ``{target}``)"
                  for attr, _, target in elsewhere] + [""]
    return "\n".join(lines)


def write_api_pages(app=None) -> None:
    """Write ``api/<module>.rst`` (only files whose text changed) and the toctree include."""
    API_DIR.mkdir(exist_ok=True)
    pages = api_pages()
    for stale in API_DIR.glob("calkit*.rst"):
        if stale.stem not in pages:
            stale.unlink()
    for name, text in pages.items():
        _write_if_changed(API_DIR / f"{name}.rst", text)
    toc = [".. toctree::", "   :maxdepth: 1", ""] + [f"   api/{n}" for n in pages] + [""]
    _write_if_changed(API_DIR / "toctree.inc", "\n".join(toc))


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _check_examples(app) -> None:
    from sphinx.util import logging

    logger = logging.getLogger("calkit.docs")
    objects = documented_objects()
    for name in names_without_examples():
        if name not in KNOWN_WITHOUT_EXAMPLES:
            obj = objects[name]
            where = f"{inspect.getsourcefile(obj)}:{inspect.getsourcelines(obj)[1]}"
            logger.warning(f"{name} ({where}) has no Examples section in its docstring")


# --------------------------------------------------------------------------------------------
# The user guide's table of contents names its pages in reading order; several are written by
# other parts of the project at the same time.  At build time the entries of absent pages are
# dropped and pages of the folder that it does not name are appended, so the guide always
# lists exactly the pages that exist (a glob would warn for each pattern that matches none).

#: documents whose toctree is completed from the pages of their folder
COMPLETED_TOCTREES = ("user_guide/index",)
_TOCTREE = re.compile(r"(```\{toctree\}\n)(.*?)(```)", re.S)


def complete_toctree(text: str, folder: Path, docname: str) -> str:
    """``text`` with its toctree entries limited to, and completed with, pages in ``folder``."""

    def fix(match):
        lines = match.group(2).splitlines()
        options = [line for line in lines if line.startswith(":")]
        entries = [line.strip() for line in lines if line.strip() and line not in options]
        kept = [e for e in entries if _doc_exists(folder, e)]
        here = Path(docname).name
        extra = sorted(p.stem for suffix in source_suffix for p in folder.glob(f"*{suffix}")
                       if p.stem not in entries and p.stem != here)
        body = options + ([""] if options else []) + kept + extra
        return match.group(1) + "\n".join(body) + "\n" + match.group(3)

    return _TOCTREE.sub(fix, text)


def _complete_toctrees(app, docname: str, source: list) -> None:
    if docname in COMPLETED_TOCTREES:
        folder = (Path(app.srcdir) / docname).parent
        source[0] = complete_toctree(source[0], folder, docname)


# --------------------------------------------------------------------------------------------
# Links to pages named in those toctrees but not written yet: {doc}`text <page>` becomes plain
# ``text`` while the page is absent.  A link to any other missing page stays a link, so Sphinx
# reports it (an error under -W).

_DOC_ROLE = re.compile(r"\{doc\}`([^`<]*?)\s*<([\w/.]+)>`")


def _doc_exists(srcdir: Path, docname: str) -> bool:
    return any((srcdir / f"{docname}{ext}").exists() for ext in source_suffix)


def planned_pages(srcdir: Path) -> set[str]:
    """Docnames the completed toctrees name (written or not)."""
    planned = set()
    for toc_doc in COMPLETED_TOCTREES:
        path = srcdir / f"{toc_doc}.md"
        if not path.exists():
            continue
        folder = Path(toc_doc).parent
        for match in _TOCTREE.finditer(path.read_text()):
            planned |= {(folder / line.strip()).as_posix()
                        for line in match.group(2).splitlines()
                        if line.strip() and not line.startswith(":")}
    return planned


def _unlink_absent_pages(app, docname: str, source: list) -> None:
    srcdir = Path(app.srcdir)
    here = Path(docname).parent
    planned = planned_pages(srcdir)

    def unlink(match):
        target = match.group(2)
        resolved = (Path(target.lstrip("/")) if target.startswith("/")
                    else Path(os.path.normpath(here / target))).as_posix()
        if resolved in planned and not _doc_exists(srcdir, resolved):
            return match.group(1)
        return match.group(0)

    source[0] = _DOC_ROLE.sub(unlink, source[0])


# --------------------------------------------------------------------------------------------
# ``calkit-run``: a code block executed at build time, shown with what it printed and the
# matplotlib figures it left open (embedded as PNG data, so no files are written).

def _run_directive():
    from docutils import nodes
    from docutils.parsers.rst import Directive, directives

    class CalkitRun(Directive):
        """Run the block's Python code (one namespace per page) and show code + output.

        The code runs in a scratch folder of its own page (files it writes are not kept).
        Options: ``:requires-data:`` paths under the shared data folder, ``:requires:``
        dotted names (``calkit.posthoc.TemperatureScaling``); when one is missing the code is
        shown, not run, with a note saying why.
        """

        has_content = True
        option_spec = {"requires-data": directives.unchanged_required,
                       "requires": directives.unchanged_required}

        def run(self):
            env = self.state.document.settings.env
            missing = _unmet(self.options)
            if missing:
                return _not_run(self.content, missing)
            namespaces = env.temp_data.setdefault("calkit_run", {})
            namespace = namespaces.setdefault(env.docname, {"__name__": "__calkit_docs__"})
            code = "\n".join(self.content)
            out = io.StringIO()
            try:
                with _working_directory(_page_dir(env)), contextlib.redirect_stdout(out):
                    exec(compile(code, f"<{env.docname}>", "exec"), namespace)  # noqa: S102
            except Exception:
                raise self.error(f"calkit-run block failed in {env.docname}:\n"
                                 + traceback.format_exc()) from None
            shown = [nodes.literal_block(code, code, language="python")]
            if out.getvalue().strip():
                text = out.getvalue().rstrip()
                shown.append(nodes.literal_block(text, text, language="none",
                                                 classes=["calkit-output"]))
            shown += [nodes.image(uri=uri, alt="figure drawn by the code above")
                      for uri in _figures_as_data_uris()]
            return shown

    return CalkitRun


def _console_directive():
    from docutils import nodes
    from docutils.parsers.rst import Directive, directives

    class CalkitConsole(Directive):
        """Run ``calkit ...`` command lines and show the session.

        The lines are passed to :func:`calkit.cli.main`, the function behind the ``calkit``
        console script, in the page's scratch folder (where the page's ``calkit-run`` blocks
        may have written input files); a non-zero exit code fails the build.  Options as for
        ``calkit-run``.
        """

        has_content = True
        option_spec = {"requires-data": directives.unchanged_required,
                       "requires": directives.unchanged_required}

        def run(self):
            import shlex

            from calkit.cli import main

            missing = _unmet(self.options)
            if missing:
                return _not_run(self.content, missing, language="console")
            shown = []
            with _working_directory(_page_dir(self.state.document.settings.env)):
                for line in self.content:
                    argv = shlex.split(line)
                    if not argv or argv[0] != "calkit":
                        raise self.error(f"calkit-console runs 'calkit ...' lines, got {line!r}")
                    out = io.StringIO()
                    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                        code = main(argv[1:])
                    if code != 0:
                        raise self.error(f"{line!r} exited with {code}:\n{out.getvalue()}")
                    shown.append(f"$ {line}\n{out.getvalue().rstrip()}")
            text = "\n\n".join(shown)
            return [nodes.literal_block(text, text, language="console")]

    return CalkitConsole


def _unmet(options: dict) -> list[str]:
    """What a block's ``:requires-data:`` and ``:requires:`` options name that is absent."""
    missing = [f"the real data {p} (not under {SHARED_DATA})"
               for p in options.get("requires-data", "").split()
               if not (SHARED_DATA / p).exists()]
    missing += [why_missing(name)
                for name in missing_requirements(options.get("requires", "").split())]
    return missing


_SCRATCH = tempfile.TemporaryDirectory(prefix="calkit-docs-")


def _page_dir(env) -> str:
    """The scratch folder of the page being read (created on first use)."""
    path = Path(_SCRATCH.name) / env.docname.replace("/", "__")
    path.mkdir(exist_ok=True)
    return str(path)


@contextlib.contextmanager
def _working_directory(path: str):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _not_run(content, missing: list[str], language: str = "python") -> list:
    """The code of a block whose needs are unmet, with a note saying so (not an error)."""
    from docutils import nodes

    code = "\n".join(content)
    note = nodes.note()
    note += nodes.paragraph(text=f"Not run in this build: it needs {'; '.join(missing)}.")
    return [note, nodes.literal_block(code, code, language=language)]


def _figures_as_data_uris() -> list[str]:
    """Every open matplotlib figure as a PNG ``data:`` URI; the figures are closed."""
    import base64

    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    uris = []
    for num in plt.get_fignums():
        buffer = io.BytesIO()
        plt.figure(num).savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        uris.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
    plt.close("all")
    return uris


def setup(app):
    # Before sphinx-gallery (priority 500) and before the sources are read.
    app.connect("builder-inited", write_api_pages, priority=100)
    app.connect("builder-inited", _check_examples, priority=900)
    app.connect("source-read", _complete_toctrees)
    app.connect("source-read", _unlink_absent_pages)
    app.add_directive("calkit-run", _run_directive())
    app.add_directive("calkit-console", _console_directive())
    return {"parallel_read_safe": True}
