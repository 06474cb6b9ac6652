"""`python -m scorewright.cli`: the same as the `scorewright` command."""

import sys

from . import main

sys.exit(main())
