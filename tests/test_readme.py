"""The README's quickstart code runs as written."""

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_the_install_run_and_test_commands():
    text = README.read_text()
    assert "plantlearn demo" in text
    assert "python -m pytest tests" in text


def test_readme_quickstart_runs(capsys):
    blocks = _python_blocks()
    assert blocks, "README has no python code block"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for block in blocks:
            exec(compile(block, str(README), "exec"), {"__name__": "__readme__"})
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    p_at_1 = float(re.search(r"P@1 ([0-9.]+)", out).group(1))
    # Synthetic evidence words make the first label easy once trained.
    assert p_at_1 > 0.5
