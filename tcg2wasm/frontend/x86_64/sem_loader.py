"""Imports every semantics module so that its functions register in the table."""

from tcg2wasm.frontend.x86_64 import (  # noqa: F401
    sem_alu,
    sem_atomic,
    sem_bits,
    sem_cond,
    sem_data,
    sem_flags,
    sem_flow,
    sem_frame,
    sem_muldiv,
    sem_shift,
    sem_sse4,
    sem_sse4_float,
    sem_sse42_string,
    sem_sse_float,
    sem_sse_int,
    sem_sse_move,
    sem_string,
    sem_x87,
    sem_x87_arith,
    sem_x87_env,
)
