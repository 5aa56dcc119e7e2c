"""`python -m xcomp ...` is the `xcomp` command."""
import sys

from xcomp.cli import main

sys.exit(main())
