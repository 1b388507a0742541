"""``python -m tcg2wasm.trace record|replay ...``: the trace subcommands on their own."""

import sys

from tcg2wasm.trace.cli import main

sys.exit(main())
