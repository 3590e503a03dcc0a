"""`python -m bench [--quick] [--profile]` from the repository root; see docs/benchmarks.md."""

from .run import main

raise SystemExit(main())
