"""tcg2wasm.unicorn against Unicorn: the same scripts and random hooked programs print the same; hooks cost
nothing outside their ranges; adding or deleting a hook drops only the translations it affects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import unicorn
import unicorn.x86_const as ux
from unicorn_compare import run_script, switch_imports
from unicorn_random import case, run

import tcg2wasm.unicorn as tu
import tcg2wasm.unicorn.x86_const as tx
from tcg2wasm.asm import Assembler, qword, rax, rcx, rdi, rsi

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((ROOT / "tests" / "unicorn_scripts").glob("*.py"))
RANDOM_CASES = int(os.environ.get("TCG2WASM_EXAMPLES", "200"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_script_prints_what_it_prints_under_unicorn(script: Path) -> None:
    source = script.read_text()
    assert "tcg2wasm.unicorn" in switch_imports(source)
    want = run_script(source, str(script), tcg2wasm=False)
    got = run_script(source, str(script), tcg2wasm=True)
    assert len(want.splitlines()) >= 10 and "uncaught" not in want  # the script itself works under Unicorn
    assert got == want


@pytest.mark.parametrize("seed", range(RANDOM_CASES // 2))
def test_random_program_with_random_hooks_traces_as_unicorn(seed: int) -> None:
    code, end, plan, data = case(seed)
    want = run(unicorn, ux, code, end, plan, data)
    got = run(tu, tx, code, end, plan, data)
    assert got == want, f"seed {seed}: {plan}"


def test_constants_are_the_installed_unicorns() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_unicorn_consts.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _loop(iterations: int) -> bytes:
    """A loop of 5 instructions that loads and stores the data page at 0x10000; ends at the returned length - 1."""
    a = Assembler(base=0x1000)
    top = a.label()
    a.mov(rcx, iterations)
    a.mov(rsi, 0x10000)
    a.bind(top)
    a.add(rax, qword[rsi + 0x100])
    a.mov(qword[rsi + 0x108], rax)
    a.add(rdi, rcx)
    a.dec(rcx)
    a.jnz(top)
    a.nop()
    return a.assemble()


def _uc_with_loop(iterations: int) -> tuple[tu.Uc, int]:
    code = _loop(iterations)
    mu = tu.Uc(tu.UC_ARCH_X86, tu.UC_MODE_64)
    mu.mem_map(0x1000, 0x1000)
    mu.mem_map(0x10000, 0x2000)
    mu.mem_map(0x40000, 0x1000)
    mu.mem_write(0x1000, code)
    mu.mem_write(0x10100, (3).to_bytes(8, "little"))
    return mu, 0x1000 + len(code) - 1


def test_hooks_outside_the_loop_cost_no_exit() -> None:
    """A code hook on one address, a block hook and a memory-write hook on ranges the loop never reaches."""
    n = 200_000
    mu, end = _uc_with_loop(n)
    calls: list[str] = []
    mu.hook_add(tu.UC_HOOK_CODE, lambda uc, a, s, ud: calls.append("code"), None, 0x40000, 0x40000)
    mu.hook_add(tu.UC_HOOK_BLOCK, lambda uc, a, s, ud: calls.append("block"), None, 0x40000, 0x40fff)
    mu.hook_add(tu.UC_HOOK_MEM_WRITE, lambda *a: calls.append("write"), None, 0x40000, 0x40fff)
    mu.hook_add(tu.UC_HOOK_MEM_READ, lambda *a: calls.append("read"), None, 0x11000, 0x11fff)  # the page after
    mu.emu_start(0x1000, end)
    stats = mu.machine.stats
    assert calls == []
    assert mu.reg_read(tx.UC_X86_REG_RAX) == 3 * n and mu.reg_read(tx.UC_X86_REG_RIP) == end
    assert mu.insn_count == 2 + 5 * n
    assert stats.fallback_insns == 0
    assert stats.host_exits < 100, stats  # the loop ran in wasm: not one exit per iteration
    assert mu.machine.cached_regions()


def test_code_hook_inside_a_hot_loop_fires_each_iteration() -> None:
    """The hooked instruction leaves wasm; the rest of the loop is compiled (its exits are the hook's only)."""
    n = 500
    mu, end = _uc_with_loop(n)
    seen: list[tuple[int, int, int]] = []
    dec_pc = 0x1000 + 7 + 7 + 7 + 7 + 3  # mov rcx; mov rsi; add; mov; add rdi, rcx
    mu.hook_add(tu.UC_HOOK_CODE, lambda uc, a, s, ud: seen.append((a, s, uc.reg_read(tx.UC_X86_REG_RCX))), None,
                dec_pc, dec_pc)
    mu.emu_start(0x1000, end)
    assert seen == [(dec_pc, 3, rcx) for rcx in range(n, 0, -1)]
    assert mu.machine.stats.fallback_insns == 0
    assert mu.machine.stats.host_exits < 3 * n


def test_memory_hook_sees_only_its_range_on_a_shared_page() -> None:
    n = 300
    mu, end = _uc_with_loop(n)
    writes: list[tuple[int, int, int, int]] = []
    mu.hook_add(tu.UC_HOOK_MEM_WRITE, lambda uc, acc, a, s, v, ud: writes.append((acc, a, s, v)), None,
                0x10108, 0x1010F)
    mu.hook_add(tu.UC_HOOK_MEM_READ, lambda *a: writes.append(("never",)), None, 0x10000, 0x100FF)
    mu.emu_start(0x1000, end)
    assert writes == [(tu.UC_MEM_WRITE, 0x10108, 8, 3 * i) for i in range(1, n + 1)]


def test_adding_and_deleting_a_hook_drops_only_what_it_affects() -> None:
    mu, end = _uc_with_loop(2000)
    other = Assembler(base=0x3000)
    other.mov(rax, 1)
    other.nop()
    code = other.assemble()
    mu.mem_map(0x3000, 0x1000)
    mu.mem_write(0x3000, code * 1)
    mu.emu_start(0x1000, end)
    machine = mu.machine
    loop_regions = machine.cached_regions()
    assert loop_regions
    handle = mu.hook_add(tu.UC_HOOK_CODE, lambda *a: None, None, 0x3000, 0x3000)
    assert machine.cached_regions() == loop_regions  # a hook elsewhere leaves the loop's translations alone
    mu.hook_del(handle)
    handle = mu.hook_add(tu.UC_HOOK_CODE, lambda *a: None, None, 0x1000 + 14, 0x1000 + 14)
    assert machine.cached_regions() != loop_regions  # a hook inside the loop drops its region
    mu.hook_del(handle)
    mu.reg_write(tx.UC_X86_REG_RAX, 0)
    mu.emu_start(0x1000, end)
    assert mu.reg_read(tx.UC_X86_REG_RAX) == 3 * 2000


def test_callback_exception_ends_emu_start_with_it() -> None:
    mu, end = _uc_with_loop(10)

    def boom(uc: tu.Uc, address: int, size: int, ud: object) -> None:
        raise ValueError(f"boom at {address:#x}")

    mu.hook_add(tu.UC_HOOK_CODE, boom, None, 0x1007, 0x1007)
    with pytest.raises(ValueError, match="boom at 0x1007"):
        mu.emu_start(0x1000, end)
    assert mu.reg_read(tx.UC_X86_REG_RIP) == 0x1007


def test_count_until_and_insn_count() -> None:
    mu, end = _uc_with_loop(50)
    mu.emu_start(0x1000, end, 0, 13)
    assert mu.insn_count == 13
    mu.insn_count = 0
    mu.emu_start(mu.reg_read(tx.UC_X86_REG_RIP), end)
    assert mu.insn_count == 2 + 5 * 50 - 13


def test_bad_mode_and_arguments_are_unicorn_errors() -> None:
    with pytest.raises(tu.UcError) as e:
        tu.Uc(tu.UC_ARCH_X86, tu.UC_MODE_32)
    assert e.value.errno == tu.UC_ERR_MODE and "64-bit" in str(e.value.__notes__)
    mu = tu.Uc(tu.UC_ARCH_X86, tu.UC_MODE_64)
    for call, errno in ((lambda: mu.reg_read(tx.UC_X86_REG_CR0), tu.UC_ERR_ARG),
                        (lambda: mu.reg_write(tx.UC_X86_REG_RAX, "x"), tu.UC_ERR_ARG),
                        (lambda: mu.mem_read(0, 1), tu.UC_ERR_READ_UNMAPPED),
                        (lambda: mu.emu_start(0x5000, 0x6000), tu.UC_ERR_FETCH_UNMAPPED)):
        with pytest.raises(tu.UcError) as e:
            call()
        assert e.value.errno == errno


@pytest.mark.parametrize("hooked", [False, True])
def test_timeout_ends_an_endless_loop(hooked: bool) -> None:
    import time

    mu = tu.Uc(tu.UC_ARCH_X86, tu.UC_MODE_64)
    mu.mem_map(0x1000, 0x1000)
    mu.mem_write(0x1000, b"\x48\xff\xc0\xeb\xfb")  # inc rax; jmp back
    calls = [0]
    if hooked:
        mu.hook_add(tu.UC_HOOK_CODE, lambda *a: calls.__setitem__(0, calls[0] + 1))
    t0 = time.monotonic()
    mu.emu_start(0x1000, 0x2000, timeout=100_000)  # µs
    assert time.monotonic() - t0 < 2.0  # noisy machine: 20x the timeout
    assert mu.reg_read(tx.UC_X86_REG_RAX) > 100 and mu.ctl_get_timeout() == 100_000_000
    assert calls[0] == (mu.insn_count if hooked else 0)
