"""Run the self-check: ``python -m memsafe [--json]``."""

import sys

from memsafe._selfcheck import main

sys.exit(main())
