"""Trace record and replay: record a guest run in Unicorn once, replay it through the wasm engine anywhere.

``format`` (the file format), ``record`` (Unicorn recording), ``replay`` (wasm replay, narrowing to the
first divergent instruction), ``cli`` (the ``record`` and ``replay`` subcommands).
"""
