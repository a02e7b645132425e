# Two commands for a newcomer: `make run` and `make test`. CMake does the work;
# this file only names the everyday entry points.
BUILD   ?= build
DEBUG   ?= build-debug
JOBS    ?= $(shell nproc)
MAKEFLAGS += --no-print-directory
CMAKE_FLAGS ?=
PREFIX  ?= /usr/local

.PHONY: all build debug run test test-unit deps format clean bench fuzz install

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
	@rm -rf $(BUILD) $(DEBUG) build-fuzz
