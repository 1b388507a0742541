#!/usr/bin/env python3
"""Soak test (``make soak``): a long-running guest, many Machines, and guest memory confinement.

1. A guest loop (loads, stores, a call and a ret per iteration over a 4 KiB buffer) runs for
   ``--insns`` instructions (default 10^10) on the wasm engine, in chunks of about ``--chunk``
   (each a run to the guest's hlt); after each chunk the resident and peak RSS and the number of
   cached regions and blocks are recorded.
   It passes if, after the first chunk (warm-up), peak RSS grows by less than ``--rss-slack`` MiB
   and the translation cache does not change; first the same guest runs 10^6 instructions on wasm
   and on the IR interpreter, which must end in the same state.
2. ``--machines`` (default 10,000) Machines are created, given a page and a short run, and
   dropped; RSS after them must be within ``--rss-slack`` MiB of RSS after the first 500.
3. Confinement: loads and stores of 1-16 bytes at every offset around the top of the address
   space (the page at 2^64-4096, accesses that wrap at 2^64), 2^48, 2^47 and 4 GiB, with the
   pages there mapped or not, must each end in a documented stop, write only inside the guest's
   own pages, and leave every other guest byte as it was.

Prints one line per check and a JSON summary (``--json PATH``); exit status 0 when every check passed.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from pathlib import Path

from tcg2wasm import Machine

CODE, DATA, STACK = 0x10000, 0x20000, 0x30000


def loop_code() -> bytes:
    """L: add rax,[rsi]; mov [rsi+8],rax; add rsi,16; and esi,0xff0; or esi,DATA; call F; dec rbx; jnz L; hlt
    F: imul rdx,rax,3; xor rdx,rax; ret"""
    body = bytearray(bytes.fromhex("480306" "48894608" "4883c610" "81e6f00f0000" "81ce") + DATA.to_bytes(4, "little"))
    call_at = len(body)
    body += b"\xe8\0\0\0\0" + bytes.fromhex("48ffcb") + b"\x75\0" + b"\xf4"
    body[-2] = (-len(body) + 1) & 0xFF  # jnz L (rel8 from the end of the jnz)
    f = len(body)
    body += bytes.fromhex("486bd003" "4831c2" "c3")
    body[call_at + 1:call_at + 5] = (f - (call_at + 5)).to_bytes(4, "little", signed=True)
    return bytes(body)


def loop_machine(engine: str, hot_threshold: int = 16) -> Machine:
    m = Machine(engine=engine, hot_threshold=hot_threshold)
    m.mem_map(CODE, 0x1000, "rx")
    m.mem_write(CODE, loop_code())
    m.mem_map(DATA, 0x1000, "rw")
    m.mem_write(DATA, bytes(range(256)) * 16)
    m.mem_map(STACK, 0x2000, "rw")
    for name, value in (("rsp", STACK + 0x2000), ("rsi", DATA), ("rbx", 1 << 62), ("rax", 7)):
        m.reg_write(name, value)
    return m


def rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / (1 << 20)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


ITERATION_INSNS = 11  # the loop body, the call, F and its ret


def check_long_run(insns: int, chunk: int, slack: float) -> dict:
    """Chunks end at the guest's hlt (rbx iterations each), so every chunk enters at the same pc and the
    translation cache must not change after the first; with ``count`` they would end mid-block."""
    wasm, interp = loop_machine("wasm"), loop_machine("interp")
    for m in (wasm, interp):
        m.run(CODE, count=10**6)
    same = wasm.regs() == interp.regs() and wasm.mem_read(DATA, 0x1000) == interp.mem_read(DATA, 0x1000)
    # every block compiled at its first miss: after the first chunk nothing is left to warm up (with the
    # default threshold the hlt block, missed once a chunk, gets its region at the 16th chunk)
    m, done, samples, exact = loop_machine("wasm", hot_threshold=1), 0, [], True
    t0 = time.perf_counter()
    while done < insns:
        iterations = max(1, min(chunk, insns - done) // ITERATION_INSNS)
        m.reg_write("rbx", iterations)
        before = m.stats.guest_insns
        stop = m.run(CODE)
        if stop.kind != "hlt":
            raise SystemExit(f"soak: the guest stopped: {stop.message}")
        done += iterations * ITERATION_INSNS
        exact = exact and m.stats.guest_insns - before == iterations * ITERATION_INSNS + 1  # and the hlt
        samples.append({"insns": done, "rss": round(rss_mib(), 1),
                        "peak": round(peak_mib(), 1), "regions": len(m.cached_regions()),
                        "blocks": len(m.cached_blocks())})
    seconds = time.perf_counter() - t0
    warm = samples[0]
    flat = samples[-1]["peak"] - warm["peak"] < slack
    stable = all((s["regions"], s["blocks"]) == (warm["regions"], warm["blocks"]) for s in samples)
    return {"check": "long-run", "ok": same and flat and stable and exact, "wasm_equals_interp": same,
            "counts_exact": exact, "insns": done,
            "seconds": round(seconds, 1), "insns_per_second": round(done / seconds), "first": warm,
            "last": samples[-1], "peak_flat": flat, "cache_stable": stable}


def check_many_machines(count: int, slack: float) -> dict:
    def one() -> None:
        m = Machine(engine="wasm", hot_threshold=1)
        m.mem_map(CODE, 0x1000, "rwx")
        m.mem_write(CODE, bytes.fromhex("4801d848ffc3f4"))
        m.run(CODE, count=3)

    for _ in range(min(500, count)):
        one()
    gc.collect()
    before, t0 = rss_mib(), time.perf_counter()
    for _ in range(count):
        one()
    gc.collect()
    after = rss_mib()
    return {"check": "many-machines", "ok": after - before < slack, "machines": count,
            "rss_before": round(before, 1), "rss_after": round(after, 1), "seconds": round(time.perf_counter() - t0, 1)}


EDGES = ((1 << 64) - 0x1000, 1 << 48, (1 << 47) - 0x1000, 1 << 47, 1 << 32, (1 << 32) - 0x1000)
_ACCESS = {1: ("8a03", "8803"), 2: ("668b03", "668903"), 4: ("8b03", "8903"), 8: ("488b03", "488903"),
           16: ("0f1003", "0f1103")}  # mov al/ax/eax/rax / movups xmm0 <-> [rbx]
_FAULTS = {"READ_UNMAPPED", "WRITE_UNMAPPED", "READ_PROT", "WRITE_PROT", "GP"}


def _confined_once(edge: int, mapped: bool, offset: int, size: int, store: bool, engine: str) -> str | None:
    m = Machine(engine=engine, hot_threshold=1)
    m.mem_map(CODE, 0x1000, "rx")
    m.mem_write(CODE, bytes.fromhex(_ACCESS[size][store]) + b"\xf4")
    pages = [p for p in (edge - 0x1000, edge) if p < 1 << 64 and (mapped or p != edge)]
    pages = [p for p in pages if not (p >= 1 << 47 and p < (1 << 64) - (1 << 47))]  # non-canonical: unmappable
    image = {}
    for p in pages:
        m.mem_map(p, 0x1000, "rw")
        image[p] = bytes((p >> 12) + i & 0xFF for i in range(0x1000))
        m.mem_write(p, image[p])
    addr = (edge - offset) % (1 << 64)
    m.reg_write("rbx", addr)
    m.reg_write("rax", 0x1122334455667788)
    stop = m.run(CODE, count=2)
    if stop.kind not in ("hlt", "fault") or (stop.kind == "fault" and stop.fault not in _FAULTS):
        return f"undocumented stop {stop.kind} {stop.fault}: {stop.message}"
    for p in pages:
        now = m.mem_read(p, 0x1000)
        changed = [p + i for i in range(0x1000) if now[i] != image[p][i]]
        inside = all(addr <= a < addr + size or a + (1 << 64) < addr + size for a in changed)
        if changed and (not store or stop.kind == "fault" or not inside):
            return f"bytes changed at {[hex(a) for a in changed[:4]]} after {stop.kind} {stop.fault or ''}"
    return None


def check_confinement() -> dict:
    problems, runs = [], 0
    for edge in EDGES:
        for mapped in (False, True):
            for offset in range(1, 17):
                for size in _ACCESS:
                    for store in (False, True):
                        for engine in ("wasm", "interp"):
                            runs += 1
                            problem = _confined_once(edge, mapped, offset, size, store, engine)
                            if problem:
                                problems.append(f"{engine} {'store' if store else 'load'} of {size} at "
                                                f"{hex(edge)}-{offset} ({'mapped' if mapped else 'unmapped'}): "
                                                f"{problem}")
    return {"check": "confinement", "ok": not problems, "runs": runs, "problems": problems[:20]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--insns", type=float, default=1e10)
    p.add_argument("--chunk", type=float, default=5e8)
    p.add_argument("--machines", type=int, default=10_000)
    p.add_argument("--rss-slack", type=float, default=16.0, help="MiB")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    # the long run first: its peak RSS is the process's peak, before other checks raise it
    results = [check_long_run(int(args.insns), int(args.chunk), args.rss_slack),
               check_many_machines(args.machines, args.rss_slack), check_confinement()]
    for r in results:
        print(f"soak {r['check']}: {'ok' if r['ok'] else 'FAILED'} "
              + json.dumps({k: v for k, v in r.items() if k not in ('check', 'ok')}))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
