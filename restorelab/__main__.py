"""``python -m restorelab ...`` (and ``torchrun ... -m restorelab train ...``): the command line."""

import sys

from restorelab.cli import main

sys.exit(main())
