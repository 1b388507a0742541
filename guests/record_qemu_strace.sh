#!/usr/bin/env bash
# Record what qemu-x86_64 -strace prints for the system-call guest: the reference tests/test_strace.py
# compares `tcg2wasm run --strace` with (pids dropped; nothing else changed).
set -euo pipefail
cd "$(dirname "$0")"
{ qemu-x86_64-static -strace bin/syscalls.musl one two < /dev/null 2>&1 >/dev/null || true; } \
    | sed -E 's/^[0-9]+ //' > expected/syscalls.musl.qemu-strace
qemu-x86_64-static --version | sed -n 1p > expected/syscalls.musl.qemu-version
