"""`python -m kaug` is `kaug`."""
import sys

from kaug.cli import main

sys.exit(main())
