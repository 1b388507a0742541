"""Wasm emitters of the x87 ops (``tcg2wasm/ir/ops_x87.py``).

Every x87 op is a call with the signature of the host import ``x87``
(``abi.REGION_IMPORTS``): the first output is its result, the others come back
through the state block (``x87_out1`` ...). The callee is a wasm function of the
module (``x87_wasm``: the common cases, bit for bit the reference) where one
exists, which calls the import itself for the rest; the host runs the op's own
semantics (``ops_x87.x87_host_call``). docs/x87.md gives the figures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tcg2wasm.abi import STATE_OFFSET, X87_OUTPUTS
from tcg2wasm.backend.bn import I64
from tcg2wasm.backend.x87_wasm import helper_for
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
    callee = helper_for(fb.module, e, op.name, consts[-1] if consts else 0)
    fb.stmt(e.set(outputs[0].index, e.call(callee, [e.c32(HOST_CODE[op.name]), *args], I64)))
    for t, field in zip(outputs[1:], X87_OUTPUTS, strict=False):
        fb.stmt(e.set(t.index, e.state_load(STATE_OFFSET[field])))


X87_EMITTERS: dict[str, Emitter] = {d.name: _host_call for d in X87_OPS}

__all__ = ["X87_EMITTERS"]
