"""`python -m epstats_cli`."""

import sys

from epstats_cli.cli import main

sys.exit(main())
