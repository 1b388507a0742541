"""`pip install` of the checkout into a fresh venv gives a working command (make test-install; ~1 min).

Marked ``install``: `make test` deselects it (it builds a venv), `make test-install` runs it.
The guest's view is compared with qemu-x86_64 (qemu-user-static) when it is installed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUSYBOX = "/bin/busybox"
QEMU = shutil.which("qemu-x86_64-static") or shutil.which("qemu-x86_64")
pytestmark = pytest.mark.install

PROBE = 'echo ${#BIG} $# "$1"; [ "$2" = "$ARG" ] && echo same; [ -z "${LC_CTYPE+set}" ] && echo no LC_CTYPE'


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("install") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=300)
    subprocess.run([str(path / "bin" / "pip"), "install", "--quiet", "-c", str(ROOT / "constraints.txt"), str(ROOT)],
                   check=True, timeout=900)
    return path


def tcg2wasm(venv: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / "tcg2wasm"), *argv], capture_output=True, text=True, timeout=600,
                          env=env, cwd="/")


def test_version_and_demo(venv: Path) -> None:
    version = tcg2wasm(venv, "--version")
    assert version.returncode == 0 and version.stdout.startswith("tcg2wasm 0.") and "wasmtime 50." in version.stdout
    demo = tcg2wasm(venv, "demo")
    assert demo.returncode == 0 and demo.stdout.count(": OK") == 2, demo.stderr


def test_run_passes_a_100_kib_environment_and_dashes_like_qemu(venv: Path) -> None:
    big, arg = "b" * 102400, "a" * 102400
    env = {"PATH": "/usr/bin:/bin", "BIG": big, "ARG": arg}  # no LC_CTYPE: Python's coercion must not leak
    guest = ["/bin/busybox", "sh", "-c", PROBE, "sh", "--", arg]
    ours = tcg2wasm(venv, "run", *guest, env=env)
    assert ours.returncode == 0, ours.stderr[-2000:]
    assert ours.stdout == "102400 2 --\nsame\nno LC_CTYPE\n"
    if QEMU:
        qemu = subprocess.run([QEMU, *guest], capture_output=True, text=True, env=env, timeout=120)
        assert ours.stdout == qemu.stdout


def test_wheel_holds_examples_license_and_types(venv: Path, tmp_path: Path) -> None:
    subprocess.run([str(venv / "bin" / "pip"), "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(ROOT)],
                   check=True, timeout=600)
    (wheel,) = tmp_path.glob("tcg2wasm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"tcg2wasm/examples/sieve.json", "tcg2wasm/examples/crc32.json", "tcg2wasm/py.typed",
            "tcg2wasm/linux/syscall_names.py", "tcg2wasm/cli/run.py"} <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_without_unicorn(venv: Path) -> None:
    """Uninstalled, Unicorn is missed only by what uses it, in one line (runs last: it changes the venv)."""
    subprocess.run([str(venv / "bin" / "pip"), "uninstall", "--quiet", "-y", "unicorn"], check=True, timeout=300)
    assert tcg2wasm(venv, "demo").returncode == 0
    ok = tcg2wasm(venv, "run", BUSYBOX, "echo", "no unicorn needed")
    assert ok.returncode == 0 and ok.stdout == "no unicorn needed\n"
    for argv, status in ((["run", "--engine", "unicorn", BUSYBOX, "true"], 125),
                         (["exec", "--engine", "unicorn", str(ROOT / "tcg2wasm/examples/sieve.json")], 2),
                         (["record", "-o", "/tmp/tcg2wasm-nounicorn.t2wt", BUSYBOX, "true"], 2)):
        result = tcg2wasm(venv, *argv)
        assert result.returncode == status
        assert result.stderr.count("\n") == 1 and "Unicorn is not installed" in result.stderr, result.stderr
