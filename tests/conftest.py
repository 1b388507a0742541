"""Shared test fixtures: building small state cases from assembly source."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `from asm import assemble` in every test module
os.environ.setdefault("TCG2WASM_CHECK_IR", "1")  # validate every optimized TB while testing (tcg2wasm.opt)
# The persistent translation cache of the programs the tests run: one per test session, not the user's.
os.environ.setdefault("TCG2WASM_CACHE_DIR", tempfile.mkdtemp(prefix="tcg2wasm-test-cache-"))

from asm import assemble  # noqa: E402

BUSYBOX_PATH = Path("/bin/busybox")


@pytest.fixture
def busybox() -> Path:
    """The busybox-static binary; a test that needs it fails (not skips) when it is missing."""
    if not BUSYBOX_PATH.exists():
        pytest.fail("busybox-static is not installed: `make test` installs it (apt-get install busybox-static)")
    return BUSYBOX_PATH


CODE_ADDR = 0x10000
DATA_ADDR = 0x20000
STACK_ADDR = 0x30000
STACK_TOP = STACK_ADDR + 0x1000 - 0x10


def case_obj(src: str, *, name: str = "t", regs: dict[str, int] | None = None, stop: dict | None = None,
             final: dict | None = None, data: bytes = b"") -> dict[str, Any]:
    """A case dict: ``src`` assembled at CODE_ADDR (rx), a data page (rw) and a stack page (rw).

    Without ``stop`` the case runs until the end of the assembled code.
    """
    code = assemble(src, CODE_ADDR)
    return {
        "name": name,
        "initial": {
            "regs": {"rip": CODE_ADDR, "rsp": STACK_TOP, **(regs or {})},
            "memory": [
                {"addr": CODE_ADDR, "size": 0x1000, "perms": "rx", "data": code.hex()},
                {"addr": DATA_ADDR, "size": 0x1000, "perms": "rw", "data": data.hex()},
                {"addr": STACK_ADDR, "size": 0x1000, "perms": "rw"},
            ],
        },
        "stop": stop or {"until": CODE_ADDR + len(code)},
        **({"final": final} if final is not None else {}),
    }


@pytest.fixture
def write_case(tmp_path: Path) -> Callable[[Any, str], Path]:
    """Write a case (a dict/list as JSON, or raw text) to a file and return its path."""

    def write(content: Any, filename: str = "case.json") -> Path:
        path = tmp_path / filename
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return path

    return write
