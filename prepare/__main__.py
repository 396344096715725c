"""``python -m prepare``: see :mod:`prepare`."""

import sys

from prepare.cli import main

if __name__ == "__main__":
    sys.exit(main())
