"""Sphinx configuration of the calkit documentation.

Build (from the repository root, no network needed)::

    pip install -r docs/requirements.txt
    sphinx-build -W -b html docs docs/_build/html

Everything shown is computed at build time: the gallery scripts in
``docs/examples`` run through sphinx-gallery, the ``calkit-run`` code blocks of
the guide pages are executed here (their printed output is shown under them),
and the API pages are generated from the package's public names, so a build
never refers to a name that does not exist.  Pages written beside this file by
other parts of the project (``posthoc.md``, ``conventions.md``,
``streaming.md``...) join the table of contents when they exist.
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
import traceback
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

DOCS = Path(__file__).resolve().parent
# The repository whose calkit is documented (tests build a copy of docs/ elsewhere).
ROOT = Path(os.environ.get("CALKIT_REPO", DOCS.parent)).resolve()
sys.path.insert(0, str(ROOT))
# Real model outputs used by the gallery (optional; examples say so when absent).
os.environ.setdefault("CALKIT_SHARED_DATA", str(ROOT.parent / "shared" / "data"))
SHARED_DATA = Path(os.environ["CALKIT_SHARED_DATA"])

import calkit  # noqa: E402

project = "calkit"
author = "calkit developers"
copyright = "calkit developers"  # noqa: A001
version = release = calkit.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "examples", "images/*.py", "Thumbs.db", ".DS_Store",
                    "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip"]
templates_path: list[str] = []

html_theme = "furo"
html_title = f"calkit {release}"
html_static_path: list[str] = []

# MyST: $...$ maths, ::: fences, anchors for headings (used by cross-page links).
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# API docstrings: numpydoc sections, no per-method stub pages.
autodoc_default_options = {"members": False}
autodoc_typehints = "none"
autosummary_generate = False
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
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
# Pages that other parts of the project write beside this file.  They join the table of
# contents as they are when present, and are left out of it (silently) when absent.
OPTIONAL_PAGES = ("conventions", "posthoc", "streaming")
# Top-level pages of this documentation (everything else found in docs/*.md is "more").
OWN_PAGES = {"index", "getting_started", "api"}

# --------------------------------------------------------------------------------------------
# API reference, generated from the package's public names.

API_DIR = DOCS / "api"
#: Modules in the order data flows through calkit; those that do not exist are skipped.
API_ORDER = ("calkit", "calkit.binning", "calkit.metrics", "calkit.logits", "calkit.posthoc",
             "calkit.training", "calkit.plotting", "calkit.stream", "calkit.distributed",
             "calkit.report", "calkit.io", "calkit.cli", "calkit.datasets")


def _importable(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _public_modules() -> list:
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


def _public_names(module) -> list[str]:
    """``__all__``, else the public functions and classes the module defines."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, obj in vars(module).items()
                 if not n.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
                 and getattr(obj, "__module__", None) == module.__name__]
    return sorted(names, key=str.lower)


def _kind(obj) -> str:
    return "autoclass" if inspect.isclass(obj) else "autofunction"


def api_pages() -> dict[str, str]:
    """reST text of one page per public module.

    Each object is documented once, on the page of the first (shallowest) module
    that makes it public; ``calkit`` itself lists what it re-exports with links.
    """
    pages, home = {}, {}
    modules = _public_modules()
    for module in modules[1:]:
        for name in _public_names(module):
            home.setdefault(id(getattr(module, name)), f"{module.__name__}.{name}")
    for module in modules:
        pages[module.__name__] = _module_page(module, home)
    return pages


def _module_page(module, home: dict) -> str:
    name = module.__name__
    lines = [name, "=" * len(name), "", f".. automodule:: {name}", "   :no-members:", ""]
    own, elsewhere = [], []
    for attr in _public_names(module):
        obj = getattr(module, attr)
        target = home.get(id(obj), f"{name}.{attr}")
        (own if target == f"{name}.{attr}" else elsewhere).append((attr, obj, target))
    if own:
        lines += [".. currentmodule:: " + name, "", ".. autosummary::", ""]
        lines += [f"   {attr}" for attr, _, _ in own] + [""]
        for attr, obj, _ in own:
            lines += [f".. {_kind(obj)}:: {attr}"]
            lines += ["   :members:", ""] if inspect.isclass(obj) else [""]
    if elsewhere:
        lines += ["Also available here", "-------------------", ""]
        lines += [f"- :py:obj:`{attr} <{target}>` (documented as ``{target}``)"
                  for attr, _, target in elsewhere] + [""]
    return "\n".join(lines)


def write_api_pages() -> None:
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


write_api_pages()
exclude_patterns.append("api/*.inc")

# --------------------------------------------------------------------------------------------
# Toctrees: drop optional pages that are absent; list extra pages others add in docs/.
# Links to an absent optional page, {doc}`text <../page>`, become plain text.

_TOCTREE = re.compile(r"(```\{toctree\}\n)(.*?)(```)", re.S)
_DOC_ROLE = re.compile(r"\{doc\}`([^`<]*?)\s*<(?:\.\./|/)?([\w/]+)>`")


def _doc_exists(srcdir: Path, docname: str) -> bool:
    return any((srcdir / f"{docname}{ext}").exists() for ext in source_suffix)


def _extra_pages(srcdir: Path) -> list[str]:
    listed = OWN_PAGES | set(OPTIONAL_PAGES)
    return sorted(p.stem for p in srcdir.glob("*.md") if p.stem not in listed)


def _fix_toctrees(app, docname: str, source: list) -> None:
    srcdir = Path(app.srcdir)

    def fix(match):
        kept = []
        for line in match.group(2).splitlines():
            target = line.strip().rsplit("<", 1)[-1].rstrip(">").strip()
            page = target.removeprefix("../").removeprefix("/")
            if page in OPTIONAL_PAGES and not _doc_exists(srcdir, page):
                continue
            if line.strip() == "%extra-pages":
                kept += [f"/{p}" for p in _extra_pages(srcdir)]
                continue
            kept.append(line)
        return match.group(1) + "\n".join(kept) + "\n" + match.group(3)

    def unlink(match):
        page = match.group(2)
        if page in OPTIONAL_PAGES and not _doc_exists(srcdir, page):
            return match.group(1)
        return match.group(0)

    source[0] = _DOC_ROLE.sub(unlink, _TOCTREE.sub(fix, source[0]))


# --------------------------------------------------------------------------------------------
# ``calkit-run``: a code block executed at build time, shown with what it printed and the
# matplotlib figures it left open (embedded as PNG data, so no files are written).

def _run_directive():
    from docutils import nodes
    from docutils.parsers.rst import Directive, directives

    class CalkitRun(Directive):
        """Run the block's Python code (one namespace per page) and show code + output."""

        has_content = True
        option_spec = {"requires-data": directives.unchanged_required}

        def run(self):
            env = self.state.document.settings.env
            missing = [p for p in self.options.get("requires-data", "").split()
                       if not (SHARED_DATA / p).exists()]
            if missing:
                return _not_run(self.content, missing)
            namespaces = env.temp_data.setdefault("calkit_run", {})
            namespace = namespaces.setdefault(env.docname, {"__name__": "__calkit_docs__"})
            code = "\n".join(self.content)
            out = io.StringIO()
            try:
                with contextlib.redirect_stdout(out):
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
    from docutils.parsers.rst import Directive

    class CalkitConsole(Directive):
        """Run ``calkit ...`` command lines (in a fresh temporary folder) and show the session.

        The lines are passed to :func:`calkit.cli.main`, the function behind the ``calkit``
        console script; a non-zero exit code fails the build.
        """

        has_content = True

        def run(self):
            import shlex
            import tempfile

            from calkit.cli import main

            shown = []
            with tempfile.TemporaryDirectory() as tmp, _working_directory(tmp):
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


@contextlib.contextmanager
def _working_directory(path: str):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _not_run(content, missing: list) -> list:
    """The code of a block whose data is absent, with a note saying so (not an error)."""
    from docutils import nodes

    code = "\n".join(content)
    note = nodes.note()
    note += nodes.paragraph(text="Not run in this build: the real data it reads "
                            f"({', '.join(missing)}) is not under {SHARED_DATA}.")
    return [note, nodes.literal_block(code, code, language="python")]


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
    app.connect("source-read", _fix_toctrees)
    app.add_directive("calkit-run", _run_directive())
    app.add_directive("calkit-console", _console_directive())
    return {"parallel_read_safe": True}
