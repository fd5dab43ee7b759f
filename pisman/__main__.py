"""`python -m pisman` runs the command line."""

from pisman.cli import main

raise SystemExit(main())
