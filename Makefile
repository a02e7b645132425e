# Two commands for a newcomer: `make run` and `make test`. CMake does the work;
# this file only names the everyday entry points.
BUILD   ?= build
DEBUG   ?= build-debug
PORTABLE ?= build-x86-64
ARM64   ?= build-arm64
JOBS    ?= $(shell nproc)
MAKEFLAGS += --no-print-directory
CMAKE_FLAGS ?=
PREFIX  ?= /usr/local

.PHONY: all build debug run test test-unit test-portable test-arm64 deps format clean bench fuzz install

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

build: $(BUILD)/CMakeCache.txt
	@cmake --build $(BUILD) -j $(JOBS)

debug:
	@cmake -S . -B $(DEBUG) -DCMAKE_BUILD_TYPE=Debug -DBS_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(DEBUG) -j $(JOBS)

run: deps build
	@$(BUILD)/bertstudio serve

test: deps build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-unit: build
	@cd $(BUILD) && ctest --output-on-failure -L unit -j $(JOBS)

# The portable path on a CPU without AVX: the engine's kernel tests built for
# the plain x86-64 baseline and run under qemu's Nehalem (tests/qemu_cpu.py;
# skipped when qemu-x86_64 is missing).
test-portable:
	@cmake -S . -B $(PORTABLE) -DCMAKE_BUILD_TYPE=Release -DBS_ARCH_FLAGS=-march=x86-64 \
		-DBS_WEB=OFF -DBS_BUILD_EXAMPLES=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(PORTABLE) -j $(JOBS) --target test_tensor
	@/usr/bin/python3 tests/qemu_cpu.py portable --tensor-test $(PORTABLE)/tests/test_tensor || \
		{ rc=$$?; [ $$rc -eq 77 ]; }

# The portable path on ARM: the engine and its unit tests cross-built for
# aarch64 (cmake/aarch64-linux-gnu.cmake, -DBS_ENGINE_ONLY=ON) and run under
# qemu-aarch64 (tests/arm64.sh; skipped when the cross toolchain, qemu or the
# arm64 libraries are missing).
test-arm64:
	@tests/arm64.sh $(ARM64) $(JOBS) $(CMAKE_FLAGS)

# bertstudio, libbertstudio.{so,a}, include/bertstudio/ and bertstudio.pc
install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

bench: build
	@bench/compare.sh

fuzz:
	@cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DBS_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target fuzzers

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	@rm -rf $(BUILD) $(DEBUG) $(PORTABLE) $(ARM64) build-fuzz
