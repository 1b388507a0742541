"""Trace record and replay: record a guest run in Unicorn once, replay it through the wasm engine anywhere.

``format`` (the file format), ``record`` (Unicorn recording), ``replay`` (wasm replay, narrowing to the
first divergent instruction), ``summary`` (what a trace holds). The commands are in ``tcg2wasm.cli.trace``.
"""
