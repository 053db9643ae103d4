"""Every ``calkit`` command against a battery of bad inputs and outputs (issue 14).

Each case must end with exit code 2 (3 for a missing feature), exactly one
``calkit: error: ...`` line that names the problem, no traceback, and no partial
output left behind.  The cases are table-driven: ``CASES`` maps an id to a
builder ``(tmp_path) -> argv`` and the text the error line must contain.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from calkit import softmax
from calkit.cli import main

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(14)
Z = RNG.normal(size=(40, 3)) * 2
Y = np.arange(40) % 3
P = softmax(Z)


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


HAS_TORCH, HAS_PANDAS = _has("torch"), _has("pandas")
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# ----------------------------------------------------------------------------- file builders

def npz(tmp, name="m.npz", **arrays) -> Path:
    path = tmp / name
    np.savez(path, **(arrays or {"logits": Z, "labels": Y}))
    return path


def npy(tmp, name, array) -> Path:
    path = tmp / name
    np.save(path, array)
    return path


def text(tmp, name, content: str) -> Path:
    path = tmp / name
    path.write_text(content)
    return path


def raw(tmp, name, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def csv_table(tmp, name="t.csv", header="p0,p1,p2,label", rows=None) -> Path:
    rows = rows if rows is not None else [
        ",".join([*(repr(v) for v in p), str(y)]) for p, y in zip(P.tolist(), Y, strict=True)]
    return text(tmp, name, "\n".join([header, *rows]) + "\n")


def npy_claiming(tmp, name, shape) -> Path:
    """An .npy whose header claims ``shape`` but holds 16 bytes of data."""
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    path = tmp / name
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        fh.write(b"\0" * 16)
    return path


def fitted_calibrator(tmp, name="ts.json", method="ts", k=3) -> Path:
    """A calibrator saved by ``calkit calibrate --save``."""
    labels = np.arange(60) % k
    logits = RNG.normal(size=(60, k)) + 2 * np.eye(k)[labels]
    data = npz(tmp, f"fit{k}.npz", logits=logits, labels=labels)
    path = tmp / name
    assert main(["calibrate", "--val", str(data), "--test", str(data), "--method", method,
                 "--save", str(path), "--no-plots"]) == 0
    return path


def random_bytes(n=512) -> bytes:
    return np.random.default_rng(7).integers(0, 256, n, dtype=np.uint8).tobytes()


def _read_only_tree():
    """A directory nothing can be created in, even by root (procfs)."""
    return Path("/proc/1/calkit-out/report")


# ----------------------------------------------------------------------------- the cases

def _evaluate(*args):
    return ["evaluate", *map(str, args)]


def _calibrate(val, test, *args):
    return ["calibrate", "--val", str(val), "--test", str(test), *map(str, args)]


def _apply(cal, file, out, *args):
    return ["apply", str(cal), str(file), "--out", str(out), *map(str, args)]


CASES = {
    # --- files that are not files
    "missing file": (lambda t: _evaluate(t / "nothing.npz"), "no such file"),
    "directory": (lambda t: _evaluate(t), "is a directory"),
    "dev zero": (lambda t: _evaluate("/dev/zero"), "not a regular file (a character device)"),
    "dev null npz": (lambda t: _evaluate("/dev/null"), "not a regular file"),
    "labels file missing": (lambda t: _evaluate(npy(t, "s.npy", P), "--labels",
                                                t / "y.npy"), "no such file"),
    "labels dev zero": (lambda t: _evaluate(npy(t, "s.npy", P), "--labels", "/dev/zero"),
                        "character device"),
    # --- corrupt numpy files
    "huge npy header": (lambda t: _evaluate(npy_claiming(t, "h.npy", (10**12,)), "--labels",
                                            npy(t, "y.npy", Y)), "header claims"),
    "huge 2-D npy header": (lambda t: _evaluate(npy_claiming(t, "h.npy", (10**6, 10**6)),
                                                "--labels", npy(t, "y.npy", Y)),
                            "header claims"),
    "truncated npy": (lambda t: _evaluate(npy_claiming(t, "h.npy", (40, 3)), "--labels",
                                          npy(t, "y.npy", Y)), "truncated or corrupt"),
    "random bytes npy": (lambda t: _evaluate(raw(t, "r.npy", random_bytes()), "--labels",
                                             npy(t, "y.npy", Y)), "not a valid .npy array"),
    "empty npy": (lambda t: _evaluate(raw(t, "e.npy", b""), "--labels", npy(t, "y.npy", Y)),
                  "not a valid .npy array"),
    "npy bad header dict": (lambda t: _evaluate(
        raw(t, "b.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': 1}    \n"), "--labels",
        npy(t, "y.npy", Y)), "corrupt .npy header"),
    "random bytes npz": (lambda t: _evaluate(raw(t, "r.npz", random_bytes())),
                         "not a valid .npz archive"),
    "zip header only npz": (lambda t: _evaluate(raw(t, "z.npz", b"PK\x03\x04 not a zip")),
                            "not a valid .npz archive"),
    "npz member huge header": (lambda t: _evaluate(_npz_with_member(t)), "header claims"),
    "npz no arrays": (lambda t: _evaluate(_empty_zip(t)), "holds no arrays"),
    "object npy": (lambda t: _evaluate(_object_npy(t), "--labels", npy(t, "y.npy", Y)),
                   "holds Python objects (pickled)"),
    "pickle file": (lambda t: _evaluate(raw(t, "m.pkl", b"\x80\x04N.")),
                    "pickle files can run arbitrary code"),
    "unsupported suffix": (lambda t: _evaluate(text(t, "m.txt", "1 2 3")),
                           "unsupported file type"),
    # --- bad scores and labels
    "nan scores": (lambda t: _evaluate(npz(t, logits=np.where(Z > 2, np.nan, Z), labels=Y)),
                   "NaN or infinite"),
    "3-D scores": (lambda t: _evaluate(npz(t, logits=np.zeros((4, 5, 3)), labels=Y[:4])),
                   "1-D or 2-D numeric"),
    "complex scores": (lambda t: _evaluate(npz(t, logits=Z + 1j, labels=Y)),
                       "1-D or 2-D numeric"),
    "empty scores": (lambda t: _evaluate(npz(t, logits=np.zeros((0, 3)), labels=Y[:0])),
                     "empty"),
    "wrong label length": (lambda t: _evaluate(npz(t, logits=Z, labels=Y[:39])),
                           "40 rows of scores but 39 labels"),
    "wrong label length npy": (lambda t: _evaluate(npy(t, "s.npy", P), "--labels",
                                                   npy(t, "y.npy", Y[:-2])),
                               "40 rows of scores but 38 labels"),
    "labels out of range": (lambda t: _evaluate(npz(t, logits=Z, labels=Y + 1)),
                            "labels must lie in"),
    "no labels array": (lambda t: _evaluate(npz(t, logits=Z)), "no labels array found"),
    "npy without labels": (lambda t: _evaluate(npy(t, "s.npy", P)),
                           "give the labels with --labels"),
    "two score arrays": (lambda t: _evaluate(npz(t, a_logits=Z, b_logits=Z, labels=Y)),
                         "several arrays could be meant"),
    "scores key missing": (lambda t: _evaluate(npz(t), "--scores-key", "nope"),
                           "no scores array named 'nope'"),
    "ambiguous unit scores": (lambda t: _evaluate(npz(t, scores=RNG.uniform(size=(40, 3)),
                                                     labels=Y)), "--logits or --probs"),
    "rows sum to 5": (lambda t: _evaluate(npz(t, scores=P * 5, labels=Y)),
                      "every row sums to 5"),
    "probs flag on logits": (lambda t: _evaluate(npz(t), "--probs"), "--probs given"),
    "1-D percentages": (lambda t: _evaluate(npz(t, probs=P[:, 1] * 100, labels=Y % 2)),
                        "1-D scores outside [0, 1]"),
    "1-D logits flag": (lambda t: _evaluate(npz(t, probs=P[:, 1], labels=Y % 2), "--logits"),
                        "logits must be 2-D"),
    # --- tables
    "random bytes csv": (lambda t: _evaluate(raw(t, "r.csv", b"\xff\xfe\x00" + random_bytes())),
                         "not a readable CSV"),
    "empty csv": (lambda t: _evaluate(raw(t, "e.csv", b"")), "needs a header row"),
    "header only csv": (lambda t: _evaluate(text(t, "h.csv", "p0,p1,label\n")),
                        "needs a header row"),
    "ragged csv": (lambda t: _evaluate(text(t, "r.csv", "p0,p1,label\n0.5,0.5,0\n0.2,1\n")),
                   "fields but the header has 3"),
    "non-numeric cell": (lambda t: _evaluate(csv_table(t, rows=[
        "0.2,0.3,0.5,0", "0.1,0.1,0.8,2", "0.5,abc,0.2,1", "0.3,0.3,0.4,1"])),
        "column 'p1', row 3 (line 4): 'abc' is not a number"),
    "missing cell": (lambda t: _evaluate(csv_table(t, rows=[
        "0.2,0.3,0.5,0", "0.1,,0.8,2", "0.5,0.3,0.2,1"])),
        "column 'p1', row 2 (line 3): the value is missing"),
    "non-numeric label": (lambda t: _evaluate(csv_table(t, rows=[
        "0.2,0.3,0.5,0", "0.1,0.1,0.8,cat"])), "column 'label', row 2"),
    "duplicate headers": (lambda t: _evaluate(csv_table(t, header="p0,p1,p1,label")),
                          "duplicate column name 'p1'"),
    "two unnamed headers": (lambda t: _evaluate(csv_table(t, header=",p0,,label", rows=[
        "0,0.5,0.5,1", "1,0.4,0.6,0"])), "duplicate column name"),
    "integer id among scores": (lambda t: _evaluate(csv_table(
        t, header="fold,p0,p1,p2,label",
        rows=[f"{i % 5},{a!r},{b!r},{c!r},{y}" for i, ((a, b, c), y)
              in enumerate(zip(P.tolist(), Y, strict=True))])), "--scores"),
    "no label column": (lambda t: _evaluate(csv_table(t, header="p0,p1,p2,cls")),
                        "no label column"),
    "text only columns": (lambda t: _evaluate(text(t, "x.csv", "a,label\nx,0\ny,1\n")),
                          "no numeric score columns"),
    "scores no match": (lambda t: _evaluate(csv_table(t), "--scores", "q*"),
                        "no column matches --scores 'q*'"),
    "scores include label": (lambda t: _evaluate(csv_table(t), "--scores", "p0,p1,label"),
                             "cannot also be a score column"),
    "scores flag on npz": (lambda t: _evaluate(npz(t), "--scores", "a,b"),
                           "--scores selects table columns"),
    "where no rows": (lambda t: _evaluate(csv_table(t), "--where", "label=7"), "no rows match"),
    "where no column": (lambda t: _evaluate(csv_table(t), "--where", "llm=x"),
                        "--where column 'llm' not found"),
    "where syntax": (lambda t: _evaluate(csv_table(t), "--where", "novalue"),
                     "--where expects COL=VALUE"),
    "where on npz": (lambda t: _evaluate(npz(t), "--where", "a=b"), "--where filters apply"),
    "labels table two columns": (lambda t: _evaluate(npy(t, "s.npy", P), "--labels",
                                                     text(t, "y.csv", "a,b\n0,1\n")),
                                 "a labels table needs one column"),
    "confidence out of range": (lambda t: _evaluate(text(
        t, "c.csv", "confidence,correct\n0.5,1\n80,0\n")), "must lie in [0, 1]"),
    "correct column words": (lambda t: _evaluate(text(
        t, "c.csv", "confidence,correct\n0.5,1\n0.8,maybe\n")), "must be 0/1 or TRUE/FALSE"),
    "missing confidence": (lambda t: _evaluate(text(
        t, "c.csv", "confidence,correct\n0.5,1\nNA,0\n")), "--dropna"),
    "grouped column missing": (lambda t: _evaluate(text(
        t, "c.csv", "confidence,correct,llm\n0.5,1,a\n0.6,0,b\n"), "--group-by", "qset"),
        "qset"),
    "grouped on npz": (lambda t: _evaluate(npz(t), "--correct", "ok"),
                       "expected a .csv or .parquet table"),
    # --- flags
    "n-bins zero": (lambda t: _evaluate("--example", "--n-bins", "0"),
                    "argument --n-bins: must be a positive integer"),
    "n-bins text": (lambda t: _evaluate("--example", "--n-bins", "ten"),
                    "argument --n-bins: must be a positive integer"),
    "n-bins huge": (lambda t: _evaluate("--example", "--n-bins", "1000000000"),
                    "argument --n-bins: must be at most"),
    "ci above 1": (lambda t: _evaluate("--example", "--ci", "1.5"),
                   "argument --ci: must lie strictly between 0 and 1"),
    "ci nan": (lambda t: _evaluate("--example", "--ci", "nan"), "argument --ci"),
    "n-boot small": (lambda t: _evaluate("--example", "--ci", "0.9", "--n-boot", "5"),
                     "argument --n-boot: must be an integer >= 10"),
    "seed negative": (lambda t: _evaluate("--example", "--seed", "-1"), "argument --seed"),
    "strategy": (lambda t: _evaluate("--example", "--strategy", "median"),
                 "argument --strategy: invalid choice"),
    "format": (lambda t: _evaluate("--example", "--format", "pdf"), "argument --format"),
    "view bogus": (lambda t: _evaluate("--example", "--view", "classy"), "argument --view"),
    "view positive multiclass": (lambda t: _evaluate("--example", "--view", "positive"),
                                 "--view positive needs a binary task"),
    "logits and probs": (lambda t: _evaluate("--example", "--logits", "--probs"),
                         "not allowed with argument"),
    "abbreviated flag": (lambda t: _evaluate("--example", "--n-bin", "5"),
                         "unrecognized arguments: --n-bin"),
    "no file": (lambda t: _evaluate(), "give either FILE(s) or --example"),
    "file and example": (lambda t: _evaluate("--example", npz(t)),
                         "give either FILE(s) or --example"),
    "unknown command": (lambda t: ["frobnicate"], "invalid choice: 'frobnicate'"),
    "no command": (lambda t: [], "required: COMMAND"),
    # --- outputs of evaluate
    "out is a file": (lambda t: _evaluate("--example", "--out", text(t, "f.txt", "x")),
                      "exists and is not a directory"),
    "out holds a report": (lambda t: _evaluate("--example", "--no-plots", "--out",
                                               _old_report(t)),
                           "already holds report.json"),
    "out cannot be created": (lambda t: _evaluate("--example", "--no-plots", "--out",
                                                  _read_only_tree()), "--out"),
    "out is the input": (lambda t: _evaluate(_input_in_out(t), "--no-plots", "--force",
                                             "--correct", "correct", "--out", t),
                         "is an input file"),
    # --- calibrate
    "calibrate missing test": (lambda t: ["calibrate", "--val", str(npz(t))],
                               "the following arguments are required: --test"),
    "calibrate method": (lambda t: _calibrate(npz(t), npz(t), "--method", "magic"),
                         "unknown --method 'magic'"),
    "calibrate labels flag": (lambda t: _calibrate(npz(t), npz(t), "--labels", "y.npy"),
                              "unrecognized arguments: --labels"),
    "calibrate npy without labels": (lambda t: _calibrate(npy(t, "v.npy", P), npz(t)),
                                     "give its labels with --val-labels"),
    "calibrate platt multiclass": (lambda t: _calibrate(npz(t), npz(t), "--method", "platt"),
                                   "--method platt"),
    "calibrate class mismatch": (lambda t: _calibrate(
        npz(t), npz(t, "four.npz", logits=RNG.normal(size=(40, 4)), labels=Y)), "classes"),
    "calibrate confidence on npz": (lambda t: _calibrate(npz(t), npz(t), "--confidence",
                                                         "conf"), "--confidence"),
    "calibrate mixed kinds": (lambda t: _calibrate(
        text(t, "c.csv", "confidence,correct\n0.5,1\n0.8,0\n0.3,0\n0.9,1\n"), npz(t)),
        "both be (confidence, correct) tables"),
    "save equals val": (lambda t: _calibrate(_val(t), t / "test.npz", "--save", _val(t),
                                             "--force"), "is an input file"),
    "save equals test other spelling": (lambda t: _calibrate(
        _val(t), t / "test.npz", "--save", t / "sub" / ".." / "test.npz", "--force"),
        "is an input file"),
    "save hardlink of val": (lambda t: _calibrate(_val(t), t / "test.npz", "--save",
                                                  _hardlink(t, _val(t)), "--force"),
                             "is an input file"),
    "save exists": (lambda t: _calibrate(_val(t), t / "test.npz", "--save",
                                         text(t, "old.json", "{}")), "already exists"),
    "save missing dir": (lambda t: _calibrate(_val(t), t / "test.npz", "--save",
                                              t / "nodir" / "ts.json"), "does not exist"),
    "save is a dir": (lambda t: _calibrate(_val(t), t / "test.npz", "--save", t),
                      "is a directory"),
    "save device": (lambda t: _calibrate(_val(t), t / "test.npz", "--save", "/dev/null",
                                         "--force"), "not a regular file"),
    "calibrate out has report": (lambda t: _calibrate(_val(t), t / "test.npz", "--no-plots",
                                                      "--out", _old_report(t)),
                                 "already holds report.json"),
    "save is a report file": (lambda t: _calibrate(_val(t), t / "test.npz", "--no-plots",
                                                   "--out", t / "rep", "--save",
                                                   t / "rep" / "report.json"),
                              "one of the report files"),
    "calibrate n-bins": (lambda t: _calibrate(npz(t), npz(t), "--n-bins", "-3"),
                         "argument --n-bins"),
    # --- apply
    "apply missing calibrator": (lambda t: _apply(t / "no.json", npz(t), t / "o.npz"),
                                 "no such file"),
    "apply calibrator random bytes": (lambda t: _apply(raw(t, "c.json", random_bytes()),
                                                       npz(t), t / "o.npz"),
                                      "not a usable calibrator file"),
    "apply calibrator not calkit": (lambda t: _apply(text(t, "c.json", json.dumps({"a": 1})),
                                                     npz(t), t / "o.npz"),
                                    "not a usable calibrator file"),
    "apply calibrator dev zero": (lambda t: _apply("/dev/zero", npz(t), t / "o.npz"),
                                  "character device"),
    "apply class mismatch": (lambda t: _apply(fitted_calibrator(t, "vs.json", "vs", 4),
                                              npz(t), t / "o.npz"), "cannot be applied"),
    "apply out exists": (lambda t: _apply(fitted_calibrator(t), npz(t),
                                          raw(t, "o.npz", b"old")), "already exists"),
    "apply out is input": (lambda t: _apply(fitted_calibrator(t), npz(t), t / "m.npz",
                                            "--force"), "is an input file"),
    "apply out is calibrator": (lambda t: _apply(fitted_calibrator(t), npz(t), t / "ts.json",
                                                 "--force"), "write an .npz or .npy"),
    "apply out suffix": (lambda t: _apply(fitted_calibrator(t), npz(t), t / "o.csv"),
                         "write an .npz or .npy"),
    "apply out missing dir": (lambda t: _apply(fitted_calibrator(t), npz(t),
                                               t / "no" / "o.npz"), "does not exist"),
    "apply bad scores": (lambda t: _apply(fitted_calibrator(t), raw(t, "r.npy", b"junk"),
                                          t / "o.npz"), "not a valid .npy array"),
    "apply missing out flag": (lambda t: ["apply", str(fitted_calibrator(t)), str(npz(t))],
                               "required: --out"),
}


def _npz_with_member(tmp) -> Path:
    import zipfile

    member = npy_claiming(tmp, "inner.npy", (10**12,))
    path = tmp / "m.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(member, "logits.npy")
        zf.writestr("labels.npy", _npy_bytes(Y))
    return path


def _npy_bytes(a) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _empty_zip(tmp) -> Path:
    import zipfile

    path = tmp / "empty.npz"
    with zipfile.ZipFile(path, "w"):
        pass
    return path


def _object_npy(tmp) -> Path:
    path = tmp / "o.npy"
    np.save(path, np.array([1, "a", None], dtype=object), allow_pickle=True)
    return path


def _old_report(tmp) -> Path:
    out = tmp / "old"
    out.mkdir(exist_ok=True)
    (out / "report.json").write_text('{"old": true}')
    return out


def _input_in_out(tmp) -> Path:
    return text(tmp, "grouped.csv", "confidence,correct\n0.5,1\n0.8,0\n0.3,0\n0.9,1\n")


def _val(tmp) -> Path:
    npz(tmp, "test.npz")
    return npz(tmp, "val.npz")


def _hardlink(tmp, target) -> Path:
    link = tmp / "link.json"
    if not link.exists():
        os.link(target, link)
    return link


def check_one_error(code: int, err: str, match: str, expected_code: int = 2) -> str:
    """Exit code 2, exactly one ``calkit: error:`` line containing ``match``, no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("calkit: error:")]
    assert len(lines) == 1, err
    assert match in lines[0], lines[0]
    assert "unexpected" not in lines[0], lines[0]
    assert code == expected_code, err
    return lines[0]


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line(case, tmp_path, capsys):
    build, match = CASES[case]
    if case == "out cannot be created" and not Path("/proc/1").is_dir():
        pytest.skip("needs procfs")
    argv = build(tmp_path)
    capsys.readouterr()
    before = _listing(tmp_path)
    code = main(argv)
    out = capsys.readouterr()
    check_one_error(code, out.err, match)
    after = _listing(tmp_path)
    assert after == before, f"files left behind or changed: {sorted(after ^ before)}"


def _listing(tmp: Path) -> set:
    """(path, size, mtime) of every file under ``tmp``: nothing may be written on error."""
    out = set()
    for p in tmp.rglob("*"):
        if p.is_file():
            st = p.stat()
            out.add((str(p.relative_to(tmp)), st.st_size, st.st_mtime_ns))
    return out


def test_case_count():
    """The battery's size, reported in the issue notes (kept honest here)."""
    assert len(CASES) + len(TORCH_CASES) + len(SUBPROCESS_CASES) + len(OUTPUT_FAULTS) >= 100


# ----------------------------------------------------------------------------- torch files

def _pt(tmp, name, obj) -> Path:
    import torch

    path = tmp / name
    torch.save(obj, path)
    return path


TORCH_CASES = {
    "random bytes pt": (lambda t: raw(t, "r.pt", random_bytes()), "not a readable PyTorch file"),
    "sparse pt": (lambda t: _pt(t, "s.pt", {"logits": __import__("torch").eye(3).to_sparse(),
                                            "labels": __import__("torch").arange(3)}),
                  "sparse tensor"),
    "meta pt": (lambda t: _pt(t, "m.pt", {"logits": __import__("torch").empty(3, 3,
                                                                              device="meta"),
                                          "labels": __import__("torch").arange(3)}),
                "meta tensor"),
    "object pt": (lambda t: _pt(t, "o.pt", {"logits": __import__("torch").zeros(3, 3),
                                            "meta": __import__("fractions").Fraction(1, 3)}),
                  "weights_only=True"),
    "list pt": (lambda t: _pt(t, "l.pt", [1, 2, 3]), "expected a tensor"),
    "complex pt": (lambda t: _pt(t, "c.pt", {"logits": __import__("torch").zeros(3, 3,
                                                                             dtype=__import__(
                                                                                 "torch"
                                                                             ).complex64),
                                             "labels": __import__("torch").arange(3)}),
                   "1-D or 2-D numeric"),
}


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_bad_torch_files(case, tmp_path, capsys):
    pytest.importorskip("torch")
    build, match = TORCH_CASES[case]
    path = build(tmp_path)
    check_one_error(main(["evaluate", str(path)]), capsys.readouterr().err, match)


def test_bfloat16_pt_is_read(tmp_path, capsys):
    """bfloat16 tensors (the issue: a traceback) are read as float32, like the rest of calkit."""
    torch = pytest.importorskip("torch")
    z = torch.from_numpy(Z).to(torch.bfloat16)
    path = _pt(tmp_path, "b.pt", {"logits": z, "labels": torch.from_numpy(Y)})
    assert main(["evaluate", str(path), "--n-bins", "5"]) == 0
    from calkit import calibration_error

    expected = float(calibration_error(Y, softmax(z.float().numpy()), n_bins=5))
    assert f"{expected:.4f}" in capsys.readouterr().out


# ----------------------------------------------------------------------------- write faults

def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


OUTPUT_FAULTS = {
    "report disk full": ("evaluate", "No space left on device"),
    "save disk full": ("calibrate", "No space left on device"),
    "apply disk full": ("apply", "No space left on device"),
}


@pytest.mark.parametrize("case", list(OUTPUT_FAULTS))
def test_full_disk_leaves_nothing(case, tmp_path, capsys, monkeypatch):
    """A write that fails half-way (ENOSPC at the rename) leaves no partial or temp file."""
    command, match = OUTPUT_FAULTS[case]
    data = npz(tmp_path)
    if command == "evaluate":
        argv = _evaluate(data, "--no-plots", "--out", tmp_path / "rep")
    elif command == "calibrate":
        argv = _calibrate(data, data, "--save", tmp_path / "ts.json", "--no-plots")
    else:
        argv = _apply(fitted_calibrator(tmp_path), data, tmp_path / "o.npz")
    before = _listing(tmp_path)
    import calkit.cli._common as common

    monkeypatch.setattr(common.os, "replace", _no_space)
    check_one_error(main(argv), capsys.readouterr().err, match)
    assert _listing(tmp_path) == before
    assert not (tmp_path / "rep").exists()


# ----------------------------------------------------------------------------- real processes

def _fifo(tmp) -> Path:
    path = tmp / "pipe.npz"
    os.mkfifo(path)
    return path


SUBPROCESS_CASES = {
    "fifo": lambda t: ["evaluate", str(_fifo(t))],
    "fifo labels": lambda t: ["evaluate", str(npy(t, "s.npy", P)), "--labels", str(_fifo(t))],
    "dev zero": lambda t: ["evaluate", "/dev/zero", "--labels", "/dev/zero"],
    "huge npy": lambda t: ["evaluate", str(npy_claiming(t, "h.npy", (10**12,))), "--labels",
                           str(npy(t, "y.npy", Y))],
    "calibrate fifo": lambda t: ["calibrate", "--val", str(_fifo(t)), "--test", str(npz(t))],
}


def run_cli(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "calkit", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60, **kwargs)


_RUN_ALL = """
import contextlib, io, json, sys
from calkit.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""


def test_special_files_in_a_real_process(tmp_path):
    """FIFOs and devices are refused before they are opened (no hang), huge headers before
    anything is allocated (no MemoryError): one real process runs every case within 60 s."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    argvs = [build(tmp_path / case.replace(" ", "_")) for case, build in
             ((c, _in_dir(b)) for c, b in SUBPROCESS_CASES.items())]
    proc = subprocess.run([sys.executable, "-c", _RUN_ALL, json.dumps(argvs)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for case, (code, err) in zip(SUBPROCESS_CASES, json.loads(proc.stdout), strict=True):
        match = {"huge npy": "header claims", "dev zero": "character device"}.get(case, "FIFO")
        check_one_error(code, err, match)


def _in_dir(build):
    def run(folder: Path):
        folder.mkdir()
        return build(folder)
    return run


def test_broken_pipe_in_a_real_process():
    """``calkit evaluate --example | head -1``: one line, exit 2, no traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "calkit", "evaluate", "--example"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    proc.stdout.close()  # the reader went away before anything was read
    err = proc.stderr.read().decode()
    proc.stderr.close()
    code = proc.wait(timeout=60)
    check_one_error(code, err, "broken pipe")


@pytest.mark.skipif(IS_ROOT, reason="root can write anywhere")
def test_read_only_out_dir(tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        check_one_error(main(_evaluate("--example", "--no-plots", "--out", out)),
                        capsys.readouterr().err, "permission denied")
    finally:
        out.chmod(0o700)
