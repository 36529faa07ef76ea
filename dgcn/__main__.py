"""``python -m dgcn`` (and ``torchrun -m dgcn``)."""

import sys

from dgcn.cli import main

sys.exit(main())
