"""``python -m calkit``: the command line (see :mod:`calkit.cli`)."""

import sys

from calkit.cli import main

if __name__ == "__main__":
    sys.exit(main())
