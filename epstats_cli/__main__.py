"""`python -m epstats_cli`."""

import sys

from epstats_cli.entry import main

sys.exit(main())
