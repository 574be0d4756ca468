"""`python -m bench` entry point."""

import sys

from bench.cli.main import main

sys.exit(main())
