"""The executable of a `scorewright bundle` build: the `scorewright` command, frozen.

    scorewright-server serve MAP [--tcp-port P --ring NAME --token T --parent-pid PID ...]
"""

import sys

from scorewright.cli import main

if __name__ == "__main__":
    sys.exit(main())
