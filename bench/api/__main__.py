"""Entry point: `python -m bench.api`."""

from bench.api.run import main

raise SystemExit(main())
