# weft — front door. `make run` builds (Release) and starts `weft serve` on its defaults;
# `make test` builds with ASan + UBSan (clang) and runs every test, fuzzers included.
JOBS        ?= $(shell nproc)
# 14 fuzz targets at 20 s each: about the fuzzing wall time of the former 5 x 60 s.
FUZZ_SECONDS ?= 20
SOAK_SECONDS ?= 3600
ARGS        ?=

.PHONY: all setup setup-build setup-bench release run test test-build gcc-check tsan-check bench soak \
        format clean

all: release

# scripts/setup installs only what the target needs: `make`/`make run` the build
# dependencies, `make test` everything the tests use.
setup:
	@scripts/setup test

setup-build:
	@scripts/setup build

setup-bench:
	@scripts/setup bench

release: setup-build
	cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DWEFT_TESTS=OFF
	cmake --build build/release -j $(JOBS)

run: release
	./build/release/weft serve $(ARGS)

# The sanitizer build (clang: ASan + UBSan + libFuzzer targets), then a warnings-as-errors
# build with gcc so both compilers stay clean, then every test.
test-build: setup
	cmake -S . -B build/test -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
	      -DWEFT_SANITIZE=ON -DWEFT_FUZZ=ON -DWEFT_FUZZ_SECONDS=$(FUZZ_SECONDS)
	cmake --build build/test -j $(JOBS)

gcc-check: setup
	cmake -S . -B build/gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc
	cmake --build build/gcc -j $(JOBS)
	cd build/gcc && ctest -R '^integration\.memory$$' --output-on-failure # glibc's heap figures

# The threaded tests built with ThreadSanitizer: cross-thread publish of struct weft_group
# (itest_group), `weft serve --workers 2/4` with raw and /hub rooms across workers
# (itest_workers) and the hub tests that run 2 workers (itest_hub: the shared per-IP table).
# The last two build the weft program; a race report makes it exit non-zero and the test
# fails on that. Also examples/group_workers.c (worker threads in a weft_group). Only those
# targets, so it stays quick (under a minute).
tsan-check: setup
	cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DWEFT_TSAN=ON
	cmake --build build/tsan -j $(JOBS) --target itest_group itest_workers itest_hub \
	  example_group_workers
	cd build/tsan && TSAN_OPTIONS=halt_on_error=1 \
	  ctest -R '^(integration\.(group|workers|hub)|example\.group_workers)$$' --output-on-failure

# CTest, then the fuzzers' executions per second, then CTest's summary line again (last).
test: test-build gcc-check tsan-check
	@cd build/test && { ctest --output-on-failure -j $(JOBS) 2>&1; echo $$? >ctest.rc; } | tee ctest.log; \
	  echo "fuzzing ($(FUZZ_SECONDS) s per target):"; \
	  cat tests/fuzz-work/*/summary 2>/dev/null | sed 's/^/  /'; \
	  grep -E '[0-9]+% tests passed' ctest.log | tail -n 1; \
	  exit $$(cat ctest.rc)

bench: setup-bench release
	bench/run

# The soak run (bench/soak): two `weft serve --workers 2` (plain, TLS) under mixed `weft bench`
# traffic for SOAK_SECONDS (default an hour); RSS, fds and /metrics every 10 s into
# bench/results/soak-DATE.csv with an SVG/PNG plot beside it; fails if RSS or fds grow after
# the warm-up (see bench/soak --help). CTest runs a 2-minute one (soak.short).
soak: setup-bench release
	SOAK_SECONDS=$(SOAK_SECONDS) bench/soak

format:
	clang-format -i include/*.h src/*/*.[ch] tests/*/*.[ch] bench/*.c examples/*.c \
	  tests/lib/consumer/*.c

clean:
	rm -rf build
