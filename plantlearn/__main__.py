"""``python -m plantlearn``: the command line (see :mod:`plantlearn.cli`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
