"""``python -m kt.cli``."""

import sys

from kt.cli import main

sys.exit(main())
