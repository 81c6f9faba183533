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


def test_the_other_python_blocks_run() -> None:
    import types

    import breakwater

    readme = (ROOT / "bindings" / "python" / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)[1:]
    assert blocks, "the README shows per-key limits"
    for block in blocks:
        # The blocks' engines run on a manual clock: what they show does not hang on
        # how fast this machine runs them.
        clock = breakwater.ManualClock()
        engine = types.SimpleNamespace(from_toml=lambda text: breakwater.Engine.from_toml(text, clock=clock))
        shim = types.SimpleNamespace(**{**vars(breakwater), "Engine": engine})
        namespace: dict = {"breakwater": shim}  # type: ignore[type-arg]
        exec(compile(block, "README.md", "exec"), namespace)
        if "handle" in namespace:
            assert [namespace["handle"]("tenant-1") for _ in range(100)] == ["served"] * 100
            try:
                namespace["handle"]("tenant-1")
            except breakwater.RateLimitedError as e:
                assert e.policy == "api" and e.retry_after == 0.01
            else:
                raise AssertionError("the 101st call of a second passed")
            assert namespace["handle"]("tenant-2") == "served"
            clock.advance(0.01)
            assert namespace["handle"]("tenant-1") == "served"
