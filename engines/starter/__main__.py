"""`python -m engines.starter build [--kind text|image]`: see engines/starter/build.py."""

import sys

from engines.starter.build import main

sys.exit(main())
