# Thin wrapper over CMake. `make test` is the suite CI runs.
BUILD ?= build
SAN_BUILD ?= build-sanitize
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps test test-sanitize bench demo results clean

all: deps $(BUILD)/Makefile
	@$(MAKE) -s -C $(BUILD) -j$(JOBS)

deps:
	@scripts/deps.sh --check >/dev/null 2>&1 || scripts/deps.sh

$(BUILD)/Makefile: CMakeLists.txt
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

$(SAN_BUILD)/Makefile: CMakeLists.txt
	@cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMML_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null

test: all
	@$(BUILD)/mml_tests

test-sanitize: deps $(SAN_BUILD)/Makefile
	@$(MAKE) -s -C $(SAN_BUILD) -j$(JOBS)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		MML_SANITIZE=1 $(SAN_BUILD)/mml_tests

bench: all
	@scripts/bench.sh

results: all
	@$(BUILD)/mml train examples/fashion_cnn.json --out fashion_cnn.safetensors --json

demo: all
	@scripts/demo.sh

clean:
	rm -rf $(BUILD) $(SAN_BUILD) build-fuzz
