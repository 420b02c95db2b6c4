"""`python -m gateway.cli`: the `tiergate` command (how `tiergate up` starts the gateway)."""

import sys

from gateway.cli.main import main

sys.exit(main())
