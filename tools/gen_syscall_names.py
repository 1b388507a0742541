#!/usr/bin/env python3
"""Generate tcg2wasm/linux/syscall_names.py from the kernel's x86-64 system call table.

The numbers and names come from ``asm/unistd_64.h`` of the installed kernel headers (Debian's
linux-libc-dev), not from anything typed by hand. Run by ``make syscall-names``;
tests/test_strace.py checks that the committed table is what this script makes.

Usage: tools/gen_syscall_names.py [--header PATH] [--check] [--output PATH]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
OUTPUT = ROOT / "tcg2wasm" / "linux" / "syscall_names.py"
DEFINE = re.compile(r"^#define\s+__NR_(\w+)\s+(\d+)\s*$")


def parse_header(text: str) -> dict[int, str]:
    """number -> name for every ``#define __NR_name number`` line."""
    table: dict[int, str] = {}
    for line in text.splitlines():
        m = DEFINE.match(line)
        if m:
            table[int(m.group(2))] = m.group(1)
    if not table:
        raise ValueError("no __NR_ definitions found")
    return table


def headers_version() -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "linux-libc-dev"], capture_output=True,
                             text=True, check=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out or "unknown"


def render(table: dict[int, str], version: str) -> str:
    rows = "".join(f"    {nr}: {name!r},\n" for nr, name in sorted(table.items()))
    return (
        '"""The Linux x86-64 system call names by number (GENERATED: do not edit).\n\n'
        f"Made by tools/gen_syscall_names.py (`make syscall-names`) from {HEADER}\n"
        f"(linux-libc-dev {version}).\n"
        '"""\n\n'
        "KERNEL_SYSCALL_NAMES: dict[int, str] = {\n" + rows + "}\n\n\n"
        "def syscall_name(nr: int) -> str | None:\n"
        '    """The kernel\'s name of system call ``nr``, or None for a number the kernel does not have."""\n'
        "    return KERNEL_SYSCALL_NAMES.get(nr)\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--header", type=Path, default=HEADER)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed table differs")
    args = parser.parse_args(argv)
    try:
        table = parse_header(args.header.read_text())
    except (OSError, ValueError) as e:
        print(f"gen_syscall_names: {args.header}: {e} (apt-get install linux-libc-dev)", file=sys.stderr)
        return 2
    committed = args.output.read_text() if args.output.exists() else ""
    version = re.search(r"\(linux-libc-dev (.*)\)", committed)
    text = render(table, version.group(1) if args.check and version else headers_version())
    if args.check:
        if committed != text:
            print(f"{args.output} is not what {args.header} gives: run `make syscall-names`", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output.relative_to(ROOT)} ({len(table)} system calls)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
