"""The whole-program benchmark behind `make bench` (tools/bench.py is its command line).

- ``workloads``: the programs measured and their generated inputs;
- ``child``: one child process timed with its own resource usage (os.wait4), with a timeout;
- ``measure``: the five runners (native, qemu-x86_64, unicorn, wasm cold, wasm warm) and the repeats;
- ``report``: medians, ratios, the table, the JSON document;
- ``checks``: the acceptance checks of issue 9 as PASS/FAIL lines;
- ``plot``: the PNG (matplotlib).
"""
