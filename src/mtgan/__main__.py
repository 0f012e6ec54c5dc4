"""`python -m mtgan` (and `torchrun -m mtgan`) runs the command line."""

import sys

from mtgan.cli import main

sys.exit(main())
