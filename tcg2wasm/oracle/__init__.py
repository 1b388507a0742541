"""Unicorn as the reference: whole-case runs, block-graph capture, lockstep comparison.

- :func:`run_unicorn` runs a case with the Machine's stop conventions and result structure.
- :func:`capture_blocks` records the executed block graph (to seed regions).
- :func:`lockstep` compares the Machine with Unicorn step by step and names the first divergence.
- :data:`UNDEFINED_FLAGS` lists, per mnemonic, the rflags bits x86 leaves undefined.
"""

from tcg2wasm.oracle.capture import BlockGraph, BlockInfo, capture_blocks
from tcg2wasm.oracle.flags import UNDEFINED_FLAGS, undefined_mask
from tcg2wasm.oracle.lockstep import Divergence, LockstepReport, lockstep
from tcg2wasm.oracle.unicorn_ref import UnicornRunner, run_unicorn

__all__ = [
    "UNDEFINED_FLAGS", "BlockGraph", "BlockInfo", "Divergence", "LockstepReport", "UnicornRunner",
    "capture_blocks", "lockstep", "run_unicorn", "undefined_mask",
]
