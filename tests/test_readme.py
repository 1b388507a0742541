"""Every shell and Python block of README.md runs as written (the make-target block: the targets exist)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FENCE = re.compile(r"(?:<!-- readme-test: (?P<mark>[^>]*?) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)```", re.S)
MAKE_TARGETS_MARK = "make targets"


def blocks(lang: str) -> list[tuple[str, str | None]]:
    return [(m["body"], m["mark"]) for m in FENCE.finditer(README.read_text()) if m["lang"] == lang]


def block_id(block: tuple[str, str | None]) -> str:
    return block[0].strip().splitlines()[0][:50]


def command_env() -> dict[str, str]:
    """The test's Python environment first on PATH: `tcg2wasm` is the command installed there."""
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def test_readme_has_blocks_of_both_kinds() -> None:
    assert len(blocks("sh")) >= 4 and len(blocks("python")) >= 1


@pytest.mark.parametrize("block", [b for b in blocks("sh") if b[1] is None], ids=block_id)
def test_shell_block_runs(block: tuple[str, str | None], tmp_path: Path) -> None:
    script = "set -euo pipefail\n" + block[0]
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, env=command_env(), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("block", blocks("python"), ids=block_id)
def test_python_block_runs(block: tuple[str, str | None]) -> None:
    result = subprocess.run([sys.executable, "-c", block[0]], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_make_targets_in_the_readme_exist() -> None:
    (body,) = [b for b, mark in blocks("sh") if mark and mark.startswith(MAKE_TARGETS_MARK)]
    targets = [line.split()[1] for line in body.splitlines() if line.startswith("make ")]
    assert len(targets) >= 5
    for target in targets:
        result = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"make {target}: {result.stderr}"


def test_readme_python_comment_tells_the_truth() -> None:
    """The example's `# until 0x1000c 500500` is what it prints."""
    (body,) = [b for b, _ in blocks("python") if "500500" in b]
    result = subprocess.run([sys.executable, "-c", body], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.stdout.splitlines()[0] == "until 0x1000c 500500"
