"""Shared pytest fixtures for plantlearn's tests.

Real datasets are found through ``PLANTLEARN_DATA`` or, failing that, ``../shared/data`` next to
the repository. Missing data skip the tests that need them on a developer machine but fail them
under CI (``CI=true``), so a broken data path can never turn into a green, empty run.
"""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _missing(reason):
    """Fail under CI, skip elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true, so this is an error rather than a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def data_home():
    """The folder holding one sub-folder per real dataset, as a :class:`pathlib.Path`."""
    env = os.environ.get("PLANTLEARN_DATA")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        _missing(f"data folder '{path}' not found; set PLANTLEARN_DATA")
    return path


@pytest.fixture(scope="session")
def require_dataset(data_home):
    """Return a function ``require_dataset(name, *splits) -> Path`` that checks a dataset exists.

    It fails under CI and skips elsewhere when ``{data_home}/{name}`` or one of the requested
    splits (default: train and test) has no ``.jsonl.gz``/``.jsonl`` file.
    """

    def check(name, *splits):
        folder = data_home / name
        for split in splits or ("train", "test"):
            if not any((folder / f"{split}{ext}").is_file() for ext in (".jsonl.gz", ".jsonl")):
                _missing(f"dataset split '{folder / split}.jsonl[.gz]' not found")
        return folder

    return check


def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``gpu`` when no CUDA device is available."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    # torch is imported only when a gpu test was collected, to keep other runs fast.
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in gpu_items:
        item.add_marker(skip)
