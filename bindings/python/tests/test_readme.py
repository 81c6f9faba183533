"""The README's example is the quick start file, and it runs as written."""
from __future__ import annotations

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]
QUICKSTART = ROOT / "examples" / "quickstart" / "python" / "quickstart.py"


def test_readme_example_is_the_quickstart_and_runs() -> None:
    readme = (ROOT / "bindings" / "python" / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks, "the README has a python example"
    assert blocks[0] == QUICKSTART.read_text()
    assert len(blocks[0].strip().splitlines()) <= 18
    out = subprocess.run([sys.executable, str(QUICKSTART)], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert lines[0] == "order 0 charged"
    assert "circuit open" in lines[-1]
