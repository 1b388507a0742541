"""Compiling hot regions off the critical path: a worker thread lifts, optimizes and compiles them.

With Unicorn as the cold tier nothing waits for a region: the pc that got hot
keeps running in Unicorn until its region is ready. The worker does what the
translator does for a region (lift, optimize, discover, Binaryen, Cranelift) on
its own TB cache, reading guest code but changing nothing; the main thread
installs the finished modules at its next exit (``take_finished``), after
checking that the guest bytes are still the ones compiled, and marks their
pages as code then. Binaryen and Cranelift release the GIL, so they run on
the second core while the main thread is in Unicorn or in translated code; the
Python parts share the GIL, and the switch interval is lowered while a job runs
so that the main thread, back from C, does not wait long for it.

After a fork (which keeps only the forking thread) the worker is started again
with new queues; jobs of the parent are not carried over.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import wasmtime

from tcg2wasm.cfg.region import discover_region
from tcg2wasm.errors import GuestFault, Tcg2WasmError
from tcg2wasm.ir.core import TranslationBlock
from tcg2wasm.runtime.translation_log import TranslationLog
from tcg2wasm.runtime.translator import log_compiled

__all__ = ["BackgroundCompiler", "FinishedRegion"]

SWITCH_INTERVAL = 0.0002  # seconds: how long the main thread can wait for the GIL while a job runs

Fetch = Callable[[int, int], bytes]


@dataclass(frozen=True)
class FinishedRegion:
    entry: int
    module: wasmtime.Module | None  # None: the region could not be compiled (the entry stays cold)
    extents: tuple[tuple[int, int], ...]  # (pc, size) of each block
    code: tuple[bytes, ...]  # the guest bytes each block was translated from
    seconds: float = 0.0  # the worker's time on it
    error: str = ""
    declined: bool = False  # not compiled: the job wanted a loop and the region has none


class BackgroundCompiler:
    """One worker thread and its job queue."""

    def __init__(self, engine: wasmtime.Engine, fetch: Fetch, member: Callable[[int], bool],
                 stop_pcs: Callable[[], frozenset[int]], max_insns: int) -> None:
        self._engine = engine
        self._fetch = fetch
        self._member = member
        self._stop_pcs = stop_pcs
        self._max_insns = max_insns
        self.log: TranslationLog | None = None
        self._pid = -1
        self._start()

    def _start(self) -> None:
        # Everything the worker imports is imported here, on the calling thread: an import opens
        # files, and an fd the worker held for a moment would shift the guest's own open() results
        # (guest descriptors are host descriptors).
        from tcg2wasm.backend.wasm import compile_region  # noqa: F401
        from tcg2wasm.frontend.x86_64.translate import translate_block  # noqa: F401
        from tcg2wasm.opt import optimize_tb  # noqa: F401

        self._pid = os.getpid()
        self._jobs: deque[tuple[int, bool]] = deque()  # (entry, whether only a region with a loop is wanted)
        self._queued: set[int] = set()
        self._finished: deque[FinishedRegion] = deque()
        self._wake = threading.Condition()
        self._tbs: dict[int, TranslationBlock] = {}  # the worker's own cache (guest code it has read)
        self._thread = threading.Thread(target=self._loop, name="tcg2wasm-compiler", daemon=True)
        self._thread.start()

    def submit(self, entry: int, needs_loop: bool = False) -> None:
        """Compile the region at ``entry`` when the worker gets to it (once per entry until it is taken).

        ``needs_loop``: only if the region has a loop (else the job comes back declined).
        """
        if self._pid != os.getpid():
            self._start()
        with self._wake:
            if entry in self._queued:
                return
            self._queued.add(entry)
            self._jobs.append((entry, needs_loop))
            self._wake.notify()

    def pending(self) -> int:
        return len(self._jobs) + len(self._finished)

    def take_finished(self) -> list[FinishedRegion]:
        out: list[FinishedRegion] = []
        while self._finished:
            job = self._finished.popleft()
            self._queued.discard(job.entry)
            out.append(job)
        return out

    def forget_code(self) -> None:
        """Guest code changed somewhere: the worker's cached TBs go (results are checked anyway)."""
        self._tbs = {}

    # -- the worker ---------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._jobs:
                    self._wake.wait()
                entry, needs_loop = self._jobs.popleft()
            previous = sys.getswitchinterval()
            sys.setswitchinterval(SWITCH_INTERVAL)
            try:
                self._finished.append(self._compile(entry, needs_loop))
            finally:
                sys.setswitchinterval(previous)

    def _compile(self, entry: int, needs_loop: bool) -> FinishedRegion:
        from tcg2wasm.backend.wasm import compile_region

        t0 = time.perf_counter()
        try:
            region = discover_region(self._block, entry)
            if needs_loop and not region.back_edges(through_calls=True):
                return FinishedRegion(entry, None, (), (), time.perf_counter() - t0, declined=True)
            order = region.reachable()
            extents = tuple((pc, region.blocks[pc].size) for pc in order)
            code = tuple(_code_of(region.blocks[pc]) for pc in order)
            module = wasmtime.Module(self._engine, compile_region(region).wasm)
            log_compiled(self.log, region)
            return FinishedRegion(entry, module, extents, code, time.perf_counter() - t0)
        except (Tcg2WasmError, wasmtime.WasmtimeError, ValueError) as e:
            return FinishedRegion(entry, None, (), (), time.perf_counter() - t0, error=str(e))

    def _block(self, pc: int) -> TranslationBlock | None:
        from tcg2wasm.frontend.x86_64.translate import translate_block
        from tcg2wasm.opt import optimize_tb

        if pc in self._stop_pcs() or not self._member(pc):
            return None
        tbs = self._tbs
        tb = tbs.get(pc)
        if tb is None:
            try:
                lifted = translate_block(self._fetch, pc, max_insns=self._max_insns, stop_pcs=self._stop_pcs())
            except GuestFault:
                return None
            tb = tbs[pc] = optimize_tb(lifted)
            if self.log is not None:
                self.log.lifted(lifted)
                self.log.optimized(tb)
        return tb


def _code_of(tb: TranslationBlock) -> bytes:
    return b"".join(insn.raw for insn in tb.insns)
