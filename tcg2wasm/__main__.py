"""``python -m tcg2wasm``: the same as the ``tcg2wasm`` command."""

import sys

from tcg2wasm.cli import main

sys.exit(main())
