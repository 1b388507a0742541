"""Wasm emitters of the x87 ops (``tcg2wasm/ir/ops_x87.py``).

Every x87 op is evaluated by the host import ``x87`` (``abi.HOST_IMPORTS``):
the first output is its result, the others come back through the state block
(``x87_out1`` ...). The host runs the op's own semantics
(``ops_x87.x87_host_call``), so both engines compute the same bits by
construction; the cost is one call from wasm into Python per x87 operation
(docs/x87.md gives the figures).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tcg2wasm.abi import STATE_OFFSET, X87_OUTPUTS
from tcg2wasm.backend.bn import I64
from tcg2wasm.ir.core import Op
from tcg2wasm.ir.ops_x87 import HOST_ARGS, HOST_CODE, X87_OPS

if TYPE_CHECKING:
    from tcg2wasm.backend.function import FunctionBuilder

Emitter = Callable[["FunctionBuilder", Op], None]


def _host_call(fb: FunctionBuilder, op: Op) -> None:
    e = fb.e
    d = op.opdef
    outputs = op.args[: d.n_out]
    inputs = op.args[d.n_out : d.n_out + d.n_in]
    consts = op.args[d.n_out + d.n_in :]
    args = [e.get(t.index) for t in inputs] + [e.c64(c) for c in consts]
    args += [e.c64(0)] * (HOST_ARGS - len(args))
    fb.stmt(e.set(outputs[0].index, e.call(b"x87", [e.c32(HOST_CODE[op.name]), *args], I64)))
    for t, field in zip(outputs[1:], X87_OUTPUTS, strict=False):
        fb.stmt(e.set(t.index, e.state_load(STATE_OFFSET[field])))


X87_EMITTERS: dict[str, Emitter] = {d.name: _host_call for d in X87_OPS}

__all__ = ["X87_EMITTERS"]
