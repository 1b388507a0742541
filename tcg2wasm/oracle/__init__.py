"""Unicorn as the reference: whole-case runs, block-graph capture, lockstep comparison.

- ``oracle.unicorn_ref.run_unicorn`` runs a case with the Machine's stop conventions and result structure.
- ``oracle.capture.capture_blocks`` records the executed block graph (to seed regions).
- ``oracle.lockstep.lockstep`` compares the Machine with Unicorn step by step and names the first divergence.
- ``oracle.flags.UNDEFINED_FLAGS`` lists, per mnemonic, the rflags bits x86 leaves undefined.
- ``oracle.uc_machine.UnicornMachine`` is Unicorn behind the GuestCPU API (``tcg2wasm run --engine unicorn``).

The package imports nothing itself: importing one of them must not import Unicorn for the others
(and the case runner, which imports ``unicorn_ref`` when asked for the Unicorn engine, stays free of cycles).
"""
