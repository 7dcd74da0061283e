#!/usr/bin/env python3
"""Start AIGC Studio: `python launch.py --help` lists the options."""

import sys

from studio.cli import main

if __name__ == "__main__":
    sys.exit(main())
