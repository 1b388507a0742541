"""Golden outputs: for each golden case, exactly what ``tcg2wasm show CASE.json`` prints.

The output (guest asm, ops before and after optimization per block, the region's wat) is
compared byte for byte with ``tests/golden/<name>.txt``. An intended change to lifting,
optimization or emission is accepted with ``make golden-accept``, which runs this module
with ``TCG2WASM_ACCEPT_GOLDEN=1``: the golden files are rewritten instead of compared, and
the changed ones are listed. See docs/testing.md.
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tcg2wasm.cli import EXIT_OK, main, show_text

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_DIR = ROOT / "tests" / "golden"
CASES_DIR = GOLDEN_DIR / "cases"
#: Bundled examples that also have goldens (used in place, so `make examples` shows up in them).
EXAMPLES = ("sieve", "crc32")
ACCEPT = os.environ.get("TCG2WASM_ACCEPT_GOLDEN") == "1"
ACCEPT_HINT = "If the change is intended, run `make golden-accept` and commit the golden diff with it."
MAX_DIFF_LINES = 200
#: Accept mode: the golden files written or removed, for the summary at the end of the run.
ACCEPTED: list[str] = []


def golden_cases() -> dict[str, Path]:
    """Case name -> case file: tests/golden/cases/*.json and the bundled examples."""
    cases = {path.stem: path for path in sorted(CASES_DIR.glob("*.json"))}
    for name in EXAMPLES:
        assert name not in cases, f"golden case {name} shadows the bundled example of that name"
        cases[name] = ROOT / "tcg2wasm" / "examples" / f"{name}.json"
    return cases


CASES = golden_cases()


def golden_path(name: str) -> Path:
    return GOLDEN_DIR / f"{name}.txt"


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def read_golden(path: Path) -> str:
    """The file's text exactly (no newline translation)."""
    return path.read_bytes().decode("utf-8")


def unified_diff(expected: str, actual: str, fromfile: str, tofile: str = "tcg2wasm show (now)") -> str:
    """A unified diff expected -> actual, cut after MAX_DIFF_LINES lines."""
    lines = list(difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                      fromfile=fromfile, tofile=tofile))
    if len(lines) > MAX_DIFF_LINES:
        lines = lines[:MAX_DIFF_LINES] + [f"... {len(lines) - MAX_DIFF_LINES} more diff lines\n"]
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def accept(path: Path, actual: str) -> None:
    """Write the golden if it is new or differs, and note it for the summary."""
    if path.exists():
        expected = read_golden(path)
        if expected == actual:
            return
        diff = list(difflib.unified_diff(expected.splitlines(), actual.splitlines(), lineterm="", n=0))
        added = sum(line.startswith("+") and not line.startswith("+++") for line in diff)
        removed = sum(line.startswith("-") and not line.startswith("---") for line in diff)
        ACCEPTED.append(f"{rel(path)}: changed (+{added} -{removed} lines)")
    else:
        ACCEPTED.append(f"{rel(path)}: new")
    path.write_bytes(actual.encode("utf-8"))


class _AcceptSummary:
    """A plugin registered in accept mode: lists the golden files written or removed after the run.

    (Output from inside tests is captured; the terminal summary is not.)
    """

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        lines = ACCEPTED or [f"all {len(CASES)} goldens unchanged"]
        for line in lines:
            terminalreporter.write_line(f"golden-accept: {line}")


@pytest.fixture(scope="module", autouse=True)
def accept_summary(request: pytest.FixtureRequest) -> None:
    """In accept mode, register the summary plugin (once per session)."""
    plugins = request.config.pluginmanager
    if ACCEPT and not plugins.has_plugin("tcg2wasm-golden-accept"):
        plugins.register(_AcceptSummary(), "tcg2wasm-golden-accept")


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    case_path, path = CASES[name], golden_path(name)
    actual = show_text(case_path)
    if ACCEPT:
        accept(path, actual)
        return
    if not path.exists():
        pytest.fail(f"{rel(path)} is missing (the golden of {rel(case_path)}). Create it with "
                    "`make golden-accept`, read it, and commit it.", pytrace=False)
    expected = read_golden(path)
    if actual != expected:
        pytest.fail(f"`tcg2wasm show {rel(case_path)}` differs from {rel(path)}:\n"
                    f"{unified_diff(expected, actual, f'{rel(path)} (golden)')}{ACCEPT_HINT}", pytrace=False)


def test_no_stale_goldens() -> None:
    """Every golden file belongs to a case (accepting removes those of deleted cases)."""
    stale = sorted(path for path in GOLDEN_DIR.glob("*.txt") if path.stem not in CASES)
    if ACCEPT:
        for path in stale:
            path.unlink()
            ACCEPTED.append(f"{rel(path)}: removed (no such case)")
        return
    assert not stale, f"goldens without a case: {', '.join(map(rel, stale))}; `make golden-accept` removes them"


def test_show_text_is_what_the_cli_prints(capsys: pytest.CaptureFixture[str]) -> None:
    case_path = CASES["alu_flags_jcc"]
    assert main(["show", str(case_path)]) == EXIT_OK
    assert capsys.readouterr().out == show_text(case_path)


_RENDER_ALL = """
import json, sys
from tcg2wasm.cli import show_text
json.dump({name: show_text(path) for name, path in json.loads(sys.argv[1]).items()}, sys.stdout)
"""


def _render_in_fresh_process(hash_seed: str) -> dict[str, str]:
    env = os.environ | {"PYTHONHASHSEED": hash_seed}
    arg = json.dumps({name: str(path) for name, path in CASES.items()})
    proc = subprocess.run([sys.executable, "-c", _RENDER_ALL, arg], env=env, capture_output=True, text=True,
                          check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_output_does_not_depend_on_the_process() -> None:
    """Goldens must be deterministic: the same bytes in fresh processes with different hash seeds."""
    here = {name: show_text(path) for name, path in CASES.items()}
    for seed in ("0", "4242"):
        there = _render_in_fresh_process(seed)
        differing = sorted(name for name in CASES if there.get(name) != here[name])
        if differing:
            first = differing[0]
            diff = unified_diff(here[first], there.get(first, ""), f"{first} (this process)",
                                f"{first} (PYTHONHASHSEED={seed})")
            pytest.fail(f"output differs between processes for {differing}:\n{diff}", pytrace=False)
