"""The framework guide pages' examples run as written, and benchmarks/gpu_check.py behaves."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "user_guide"
PAGES = ("lightning.md", "transformers.md", "torchmetrics.md", "clusters.md")
NEEDS = {"lightning": "lightning", "transformers": "transformers", "torchmetrics": "torchmetrics",
         "pyspark": "pyspark", "distributed": "distributed", "torch": "torch"}


def blocks():
    for page in PAGES:
        text = (GUIDE / page).read_text()
        for i, code in enumerate(re.findall(r"```python\n(.*?)```", text, flags=re.S)):
            yield pytest.param(code, id=f"{page}-{i}")


def _run(args, cwd, timeout=600):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg", HF_HUB_OFFLINE="1",
               PYSPARK_PYTHON=sys.executable)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.parametrize("code", list(blocks()))
def test_guide_example_runs(code, tmp_path):
    for module, package in NEEDS.items():
        if re.search(rf"^(import|from) {module}\b", code, flags=re.M):
            if importlib.util.find_spec(package) is None:
                pytest.skip(f"needs {package}")
    if "pyspark" in code and shutil.which("java") is None:
        pytest.skip("PySpark needs Java")
    script = tmp_path / "example.py"
    script.write_text(code)
    out = _run([str(script)], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip()  # every example prints its result


def test_gpu_check_without_cuda_says_so_and_exits_cleanly(capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" /
                                                  "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)  # in-process: torch is imported once per session
    assert gpu_check.main([]) == 0
    assert "no CUDA device available" in capsys.readouterr().out


@pytest.mark.slow
def test_gpu_check_cpu_parts_pass(tmp_path):
    pytest.importorskip("torchmetrics")
    out = _run([str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--no-timings"],
               tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert " 0 failed" in out.stdout and "FAIL" not in out.stdout
