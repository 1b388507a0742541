"""What the figures were measured with: versions, host CPU, load, date, the source commit."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from .measure import Tools
from .workloads import ROOT

PACKAGES = ("wasmtime", "unicorn", "binaryen-py", "iced-x86")
DEBIAN_PACKAGES = ("qemu-user-static", "busybox-static", "libsqlite3-dev", "libzstd-dev", "zlib1g-dev", "musl-tools",
                   "gcc")


def _first_line(argv: list[str]) -> str | None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0] if proc.returncode == 0 and lines else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def python_packages() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def debian_packages() -> dict[str, str | None]:
    line = _first_line(["dpkg-query", "-W", "-f", r"${binary:Package}=${Version} ", *DEBIAN_PACKAGES])
    found = dict(item.split("=", 1) for item in (line or "").split() if "=" in item)
    return {name: found.get(name) or found.get(f"{name}:amd64") for name in DEBIAN_PACKAGES}


def source_commit() -> str | None:
    commit = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return f"{commit}{' (modified)' if dirty else ''}" if commit else None


def describe_host(tools: Tools) -> dict:
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "qemu": _first_line([tools.qemu, "--version"]) if tools.qemu else None,
        "python_packages": python_packages(),
        "debian_packages": debian_packages(),
        "tcg2wasm_commit": source_commit(),
        "tcg2wasm_command": list(tools.tcg2wasm),
    }
