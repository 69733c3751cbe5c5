# weft — front door. `make run` builds (Release) and starts `weft serve` on its defaults;
# `make test` builds with ASan + UBSan (clang) and runs every test, fuzzers included.
JOBS        ?= $(shell nproc)
FUZZ_SECONDS ?= 60
ARGS        ?=

.PHONY: all setup release run test test-build gcc-check bench format clean

all: release

setup:
	@scripts/setup

release: setup
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

test: test-build gcc-check
	cd build/test && ctest --output-on-failure -j $(JOBS)

bench: release
	bench/run

format:
	clang-format -i include/*.h src/*/*.[ch] tests/*/*.[ch] bench/*.c

clean:
	rm -rf build
