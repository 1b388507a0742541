"""Imports every semantics module so that its functions register in the table."""

from tcg2wasm.frontend.x86_64 import sem_alu, sem_data, sem_flags, sem_flow, sem_frame, sem_shift, sem_string  # noqa: F401
