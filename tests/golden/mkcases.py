"""Write the golden state cases (tests/golden/cases/*.json) from the assembly snippets below.

The JSON is committed, so the golden tests need no assembler; rerun this (needs GNU as/ld)
only to add or change a case, then ``make golden-accept``. Each snippet ends in a ``hlt`` where the
case stops, so that ``show`` does not lift the zeros after the code. Each case's ``final`` registers
are those Unicorn ends with (checked against the wasm engine here), so
``tcg2wasm exec tests/golden/cases/*.json`` also checks the cases themselves.

    .venv/bin/python tests/golden/mkcases.py [NAME...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/asm.py

from asm import assemble  # noqa: E402

from tcg2wasm.cases import RESULT_REGS, parse_case, run_case  # noqa: E402

CASES_DIR = HERE / "cases"
CODE, DATA, STACK = 0x10000, 0x20000, 0x30000
STACK_TOP = STACK + 0x1000 - 0x10
#: Cases whose run ends in a guest fault: no ``final`` state.
FAULTING = {"mem_fault"}

# name -> (assembly at CODE, data page contents, initial registers)
SNIPPETS: dict[str, tuple[str, bytes, dict[str, int]]] = {
    "alu_flags_jcc": (
        """
        add rax, rbx
        adc rcx, rdx
        sub rsi, 5
        cmp rax, rcx
        jb 1f
        add rdi, 1
        jmp 2f
    1:  sub rdi, 1
    2:  nop
        """, b"", {"rax": 0xFFFFFFFFFFFFFFF0, "rbx": 0x20, "rcx": 7, "rdx": 9, "rsi": 3},
    ),
    "narrow_regs": (
        """
        mov al, 0x7f
        add al, 1
        mov ah, bl
        inc bx
        movzx ecx, al
        movsx rdx, bx
        neg cl
        """, b"", {"rax": 0x1122334455667788, "rbx": 0xFFFF},
    ),
    "shift_rotate": (
        """
        shl rax, 3
        sar rbx, cl
        rol edx, 7
        rcr rsi, 1
        shld rdi, rax, 12
        shr r8w, 2
        """, b"", {"rax": 0x8000000000000123, "rbx": 0xF000000000000000, "rcx": 5, "rdx": 0x80000001,
                   "rsi": 3, "rdi": 0xABCDEF, "r8": 0xFFFF},
    ),
    "mul_div": (
        """
        imul rbx, rcx
        mul rcx
        mov r8, rax
        xor edx, edx
        mov rax, 1000003
        div rcx
        imul esi, edi, -7
        cqo
        idiv rdi
        """, b"", {"rax": 12345, "rbx": -3 & (1 << 64) - 1, "rcx": 97, "rsi": 5, "rdi": 11},
    ),
    "load_store_addr": (
        """
        mov rax, qword ptr [rbx + rcx*8 + 16]
        mov dword ptr [rbx + rcx*4 - 4], eax
        mov rdx, qword ptr [rip + table]
        lea rsi, [rbx + rcx*2 + 0x40]
        movzx edi, word ptr [rsi + rcx]
        mov byte ptr [rsi], dil
        .set table, 0x20100
        """, bytes(range(256)), {"rbx": DATA, "rcx": 3},
    ),
    "call_ret_stack": (
        """
        push rbx
        mov rdi, 5
        call 1f
        pop rbx
        jmp 2f
    1:  push rbp
        mov rbp, rsp
        lea rax, [rdi + rdi*2]
        pop rbp
        ret
    2:  nop
        """, b"", {"rbx": 0x42},
    ),
    "loop_sum": (
        """
        xor eax, eax
        mov ecx, 16
        mov rsi, 0x20000
    1:  add rax, qword ptr [rsi]
        add rsi, 8
        dec ecx
        jnz 1b
        """, bytes(i * 7 % 256 for i in range(128)), {},
    ),
    "setcc_cmov": (
        """
        cmp rax, rbx
        setl cl
        setbe dl
        cmovg rax, rbx
        test rsi, rsi
        cmovz rdi, rbx
        sete r9b
        """, b"", {"rax": 5, "rbx": -2 & (1 << 64) - 1, "rsi": 0, "rdi": 7},
    ),
    "rep_string": (
        """
        mov rsi, 0x20000
        mov rdi, 0x20100
        mov ecx, 24
        cld
        rep movsb
        mov eax, 0x41
        mov ecx, 4
        rep stosq
        """, b"golden string op data.." * 2, {},
    ),
    "bit_ops": (
        """
        bt rax, 5
        setc cl
        bts rbx, 63
        bsf rdx, rax
        bsr rsi, rax
        popcnt rdi, rax
        tzcnt r8, rbx
        """, b"", {"rax": 0x00F0_0000_0000_0120},
    ),
    "sse_int": (
        """
        movdqu xmm0, xmmword ptr [rip + vec_a]
        movdqu xmm1, xmmword ptr [rip + vec_b]
        paddd xmm0, xmm1
        pcmpeqb xmm1, xmm0
        pmovmskb eax, xmm1
        movdqu xmmword ptr [rip + vec_out], xmm0
        .set vec_a, 0x20000
        .set vec_b, 0x20010
        .set vec_out, 0x20020
        """, bytes(range(16)) + bytes([0, 0, 0, 0, 1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]), {},
    ),
    "sse_float": (
        """
        cvtsi2sd xmm0, rax
        movsd xmm1, qword ptr [rip + half]
        addsd xmm0, xmm1
        cvtsi2sd xmm2, rbx
        ucomisd xmm0, xmm2
        ja 1f
        cvttsd2si rcx, xmm0
    1:  movsd qword ptr [rip + out], xmm0
        .set half, 0x20000
        .set out, 0x20008
        """, bytes.fromhex("000000000000e03f"), {"rax": 41, "rbx": 42},
    ),
    "fallback_insn": (
        """
        add rax, 3
        xlatb
        add rcx, rax
        """, bytes(255 - i for i in range(256)), {"rbx": DATA, "rcx": 0x100},
    ),
    "mem_fault": (
        """
        mov rax, 1
        add rbx, rax
        mov rcx, qword ptr [rbx + 0x50000]
        add rcx, 1
        """, b"", {"rbx": 0x10},
    ),
}


def build(name: str) -> dict[str, Any]:
    """The case dict of one snippet, with ``final`` registers from Unicorn unless it faults."""
    src, data, regs = SNIPPETS[name]
    code = assemble(src + "\nhlt", CODE)  # the region ends at the hlt, not in the zeros after the code
    assert code[-1] == 0xF4, name
    obj: dict[str, Any] = {
        "name": name,
        "description": " ; ".join(line.strip() for line in src.strip().splitlines()),
        "initial": {
            "regs": {"rip": CODE, "rsp": STACK_TOP, **regs},
            "memory": [
                {"addr": CODE, "size": 0x1000, "perms": "rx", "data": code.hex()},
                {"addr": DATA, "size": 0x1000, "perms": "rw", "data": data.hex()},
                {"addr": STACK, "size": 0x1000, "perms": "rw"},
            ],
        },
        "stop": {"until": CODE + len(code) - 1},
    }
    if name not in FAULTING:
        obj["final"] = {"regs": _final_regs(obj)}
    return obj


def _final_regs(obj: dict[str, Any]) -> dict[str, int]:
    """Registers Unicorn changes, after checking that the wasm engine ends in the same state."""
    case = parse_case(obj)
    expected = run_case(case, "unicorn")
    got = run_case(case, "wasm")
    if expected.stop["kind"] != "until":
        raise SystemExit(f"{case.name}: unicorn stopped with {expected.stop}")
    if got.regs != expected.regs:
        raise SystemExit(f"{case.name}: wasm {got.regs} != unicorn {expected.regs}")
    initial = {"rflags": 0x2} | case.regs
    return {r: expected.regs[r] for r in RESULT_REGS if expected.regs[r] != initial.get(r, 0)}


def main(names: list[str]) -> None:
    CASES_DIR.mkdir(exist_ok=True)
    for name in names or sorted(SNIPPETS):
        path = CASES_DIR / f"{name}.json"
        path.write_text(json.dumps(build(name), indent=1) + "\n")
        print(f"wrote {path.relative_to(HERE.parent.parent)}")


if __name__ == "__main__":
    main(sys.argv[1:])
