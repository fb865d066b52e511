"""Run the self-check: ``python -m memsafe [--json] [--version] [--help]``."""

import sys

from memsafe._selfcheck import main

sys.exit(main())
