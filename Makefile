# tcg2wasm developer commands. `make demo` and `make test` are the two that matter;
# both create the virtual environment (.venv) on first use.

VENV     := .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.installed
EXAMPLES := $(wildcard examples/*.py)

# The newest Python >= 3.12 on PATH, else under pyenv (binaryen-py needs 3.12+).
PYTHON_FOR_VENV ?= $(shell \
	for p in python3.12 python3.13; do \
	  command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null \
	    && { command -v $$p; exit 0; }; \
	done; \
	root=$$(pyenv root 2>/dev/null || echo "$${PYENV_ROOT:-$$HOME/.pyenv}"); \
	for d in $$(ls -d $$root/versions/3.1[2-9]* 2>/dev/null | sort -V); do \
	  for p in $$d/bin/python3.1[2-9]; do [ -x $$p ] && { echo $$p; exit 0; }; done; \
	done)

# Random states per instruction form in the differential tests: `make test` keeps its run within
# its time budget; `make test-diff` is the full-strength differential run (200 states per form).
TEST_EXAMPLES ?= 20

.PHONY: venv demo test test-install test-diff golden-accept guest-tools native-tools guests lint bench bench-deps \
	bench-guests bench-replay examples syscall-names clean conformance unicorn-consts unicorn-diff bench-unicorn-api \
	fuzz fuzz-all fuzz-campaign soak

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@if [ ! -x $(PY) ]; then \
	  if [ -z "$(PYTHON_FOR_VENV)" ]; then \
	    echo "error: no Python >= 3.12 found (looked for python3.12/python3.13 on PATH and under \$$(pyenv root)/versions/3.1[2-9]*)." >&2; \
	    echo "       install Python 3.12 or newer, or run: make venv PYTHON_FOR_VENV=/path/to/python3.12" >&2; \
	    exit 1; \
	  fi; \
	  echo "creating $(VENV) with $(PYTHON_FOR_VENV)"; \
	  $(PYTHON_FOR_VENV) -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,bench,fuzz]'
	@# bytecode now, even where PYTHONDONTWRITEBYTECODE is set: every command starts faster
	@$(PY) -m compileall -q tcg2wasm tools >/dev/null
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tcg2wasm demo

test: $(STAMP) guest-tools native-tools
	TCG2WASM_EXAMPLES=$(TEST_EXAMPLES) $(VENV)/bin/pytest -q -m "not install"

# pip install the checkout into a fresh venv (and a wheel); run the installed command, with and
# without Unicorn, against qemu-x86_64 (installed when missing).
test-install: $(STAMP) guest-tools
	@command -v qemu-x86_64-static >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static
	$(VENV)/bin/pytest -q -m install tests/test_install.py

test-diff: $(STAMP)
	TCG2WASM_EXAMPLES=200 $(VENV)/bin/pytest -q tests/test_lift_*.py

# Rewrite tests/golden/*.txt from the current translator output and list the changed files;
# review the golden diff and commit it with the change (docs/testing.md).
golden-accept: $(STAMP)
	TCG2WASM_ACCEPT_GOLDEN=1 $(VENV)/bin/pytest -q tests/test_golden.py

# busybox-static provides real guest programs for the user-mode tests; installed when missing (as root).
guest-tools:
	@command -v gcc >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev; \
	  else echo "note: gcc is missing; install it for the native-oracle tests" >&2; fi; }
	@command -v busybox >/dev/null 2>&1 || [ -x /bin/busybox ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static; \
	  else echo "note: busybox-static is missing; install it for the busybox tests" >&2; fi; }
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz || \
	    { (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz; }; \
	  else echo "note: graphviz is missing; install it for the region-graph test" >&2; fi; }

# gcc builds the native oracle's runner (tcg2wasm/fuzz/native_runner.c, on first use); installed when missing.
native-tools:
	@command -v gcc >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc; \
	  else echo "note: gcc is missing; the native-oracle tests need it" >&2; fi; }

# Fuzz campaigns (docs/testing.md). `make fuzz` runs one kind on every core for FUZZ_SECONDS;
# `make fuzz-all` each kind in turn; `make fuzz-campaign` the long instruction-stream campaign
# against the CPU (FUZZ_CASES cases from FUZZ_SEED, one job, niced). Failures and summary.json
# go to build/fuzz/KIND. Extra options in FUZZ_ARGS (e.g. FUZZ_ARGS="--local-cluster 2").
FUZZ_KIND    ?= streams
FUZZ_SECONDS ?= 600
FUZZ_CASES   ?= 1000000
FUZZ_SEED    ?= 30000000
FUZZ_ARGS    ?=
fuzz: $(STAMP) native-tools
	$(VENV)/bin/tcg2wasm fuzz $(FUZZ_KIND) --seconds $(FUZZ_SECONDS) --out build/fuzz/$(FUZZ_KIND) $(FUZZ_ARGS)

fuzz-all: $(STAMP) native-tools
	for kind in streams cfg blobs files; do \
	  $(VENV)/bin/tcg2wasm fuzz $$kind --seconds $(FUZZ_SECONDS) --out build/fuzz/$$kind $(FUZZ_ARGS) || exit 1; done

fuzz-campaign: $(STAMP) native-tools
	nice -n 10 $(VENV)/bin/tcg2wasm fuzz streams --jobs 1 --nice 10 --seed $(FUZZ_SEED) --cases $(FUZZ_CASES) \
	  --wasm-every 10 --out build/fuzz/campaign-$(FUZZ_SEED) $(FUZZ_ARGS)
	$(VENV)/bin/tcg2wasm fuzz streams --recheck build/fuzz/campaign-$(FUZZ_SEED)

# A long-running guest: flat peak RSS and translation cache, guest memory confined (docs/testing.md, soak).
SOAK_ARGS ?=
soak: $(STAMP)
	$(PY) tools/soak.py $(SOAK_ARGS)

# Rebuild the guest programs (static, musl and glibc) and record their native output. The crash and
# system-call guests exist to test tcg2wasm's reports, which do not depend on the libc: musl only.
MUSL_ONLY := crash_segv crash_ud nosys syscalls
guests:
	@command -v musl-gcc >/dev/null 2>&1 || { echo "error: musl-gcc missing: apt-get install musl-tools" >&2; exit 1; }
	for src in guests/src/*.c; do n=$$(basename $$src .c); \
	  musl-gcc -static -O2 -s -o guests/bin/$$n.musl $$src || exit 1; \
	  case " $(MUSL_ONLY) " in *" $$n "*) ;; *) gcc -static -O2 -s -o guests/bin/$$n.glibc $$src || exit 1;; esac; \
	done
	guests/record_expected.sh
	@command -v qemu-x86_64-static >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static
	guests/record_qemu_strace.sh

# Native-oracle conformance: guests/conformance/*.c built static with gcc, run natively and through
# tcg2wasm, compared line for line (the short sets run in `make test`: tests/test_conformance.py).
conformance: $(STAMP) guest-tools
	$(PY) tools/conformance.py

lint: $(STAMP)
	$(VENV)/bin/ruff check tcg2wasm tests tools
	$(VENV)/bin/mypy

# tcg2wasm.unicorn (docs/unicorn-api.md): regenerate its constants from the installed unicorn; run
# Unicorn scripts (SCRIPTS=..., default the bundled ones) under unicorn and tcg2wasm.unicorn and diff;
# the hooked loop of issue 10 timed under both (BENCH_ARGS, e.g. "--iterations 4000000 --repeats 1").
unicorn-consts: $(STAMP)
	$(PY) tools/gen_unicorn_consts.py

SCRIPTS ?= $(wildcard tests/unicorn_scripts/*.py)
unicorn-diff: $(STAMP)
	$(PY) tools/unicorn_diff.py $(SCRIPTS)

bench-unicorn-api: $(STAMP)
	$(PY) tools/bench_unicorn_api.py $(BENCH_ARGS)

# The benchmark (docs/performance.md): every workload under native, qemu-x86_64, unicorn, wasm cold
# and wasm warm; one table, acceptance checks, build/bench/bench.{json,md,png}. Options go in
# BENCH_ARGS, e.g. make bench BENCH_ARGS="--quick" or BENCH_ARGS="--only sqlite --repeat 5".
BENCH_ARGS ?=
BENCH_BIN  := build/bench/bin
BENCH_SRC  := guests/bench
BENCH_PROGRAMS := $(addprefix $(BENCH_BIN)/,hashprobe sqlite zstdzlib bytecode calls nbody sieve)
# Debian package -> a file it installs (how bench-deps tells it is missing)
BENCH_DEBS := qemu-user-static:/usr/bin/qemu-x86_64-static busybox-static:/bin/busybox \
	musl-tools:/usr/bin/musl-gcc libsqlite3-dev:/usr/include/sqlite3.h libzstd-dev:/usr/include/zstd.h \
	zlib1g-dev:/usr/include/zlib.h gcc:/usr/bin/gcc

bench: $(STAMP) bench-deps bench-guests
	$(PY) tools/bench.py $(BENCH_ARGS)

# Replay speed (tcg2wasm replay of a recorded trace) against tcg2wasm run of the same program.
bench-replay: $(STAMP) guest-tools
	$(PY) tools/trace_bench.py $(BENCH_ARGS)

bench-deps:
	@missing=""; for pair in $(BENCH_DEBS); do [ -e "$${pair#*:}" ] || missing="$$missing $${pair%%:*}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing"; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "error: the benchmark needs these Debian packages:$$missing" >&2; exit 1; fi; \
	fi

bench-guests: $(BENCH_PROGRAMS)

$(BENCH_BIN)/sqlite: $(BENCH_SRC)/sqlite.c | bench-deps
	@mkdir -p $(BENCH_BIN)
	@# glibc warns that SQLite's (unused) dlopen needs the shared libraries at run time: filtered out
	gcc -static -O2 -o $@ $< -lsqlite3 -lm 2>$@.log || { cat $@.log >&2; rm -f $@.log; exit 1; }
	@grep -v "dlopen\|unixDlOpen\|statically linked" $@.log >&2 || true; rm -f $@.log

$(BENCH_BIN)/zstdzlib: $(BENCH_SRC)/zstdzlib.c | bench-deps
	@mkdir -p $(BENCH_BIN)
	gcc -static -O2 -o $@ $< -lzstd -lz

$(BENCH_BIN)/nbody: $(BENCH_SRC)/nbody.c | bench-deps
	@mkdir -p $(BENCH_BIN)
	musl-gcc -static -O2 -o $@ $< -lm

$(BENCH_BIN)/%: $(BENCH_SRC)/%.c | bench-deps
	@mkdir -p $(BENCH_BIN)
	musl-gcc -static -O2 -o $@ $<

# examples/sieve.py (bench_sieve's parameters) as a Linux program: exit status = primes below 65536, mod 256
$(BENCH_BIN)/sieve: examples/sieve.py tools/mkcase.py tools/benchkit/build_sieve.py $(STAMP)
	$(PY) tools/benchkit/build_sieve.py $@

# Rebuild tcg2wasm/examples/*.json (package data) from every examples/*.py (written with tcg2wasm.asm).
examples: $(STAMP)
	$(PY) tools/mkcase.py $(EXAMPLES)

# Regenerate tcg2wasm/linux/syscall_names.py from the kernel headers' x86-64 system call table.
syscall-names: $(STAMP)
	@[ -f /usr/include/x86_64-linux-gnu/asm/unistd_64.h ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-libc-dev
	$(PY) tools/gen_syscall_names.py

clean:
	rm -rf build *.egg-info .pytest_cache .ruff_cache .hypothesis
