# Thin wrapper over CMake. `make test` and `make run` install what is missing first.
BUILD      ?= build
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
LISTEN     ?= 127.0.0.1:8080
CMAKE_ARGS ?=

.PHONY: all deps build test run test-sanitize test-browser crash-test fuzz soak bench install clean format format-check

all: build

deps:
	@./scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DTXSTATS_WERROR=ON $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# Warnings are errors; every test (unit, install/consume, server integration).
test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

run: build
	$(BUILD)/server/txstats-server --listen $(LISTEN)

# ASan+UBSan over every test, TSan over the concurrency tests; separate build directories.
test-sanitize: deps
	cmake -S . -B $(BUILD)-asan -DTXSTATS_WERROR=ON -DTXSTATS_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS) -LE 'install|crash|soak'
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(BUILD)-asan/tests/crash_test $(BUILD)-asan/server/txstats-server 5
	cmake -S . -B $(BUILD)-tsan -DTXSTATS_WERROR=ON -DTXSTATS_SANITIZE=thread -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD)-tsan -j $(JOBS)
	cd $(BUILD)-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -L concurrency

# kill -9 the server at random moments, N times (make test runs 20).
N ?= 200
crash-test: build
	$(BUILD)/tests/crash_test $(BUILD)/server/txstats-server $(N)

# Saturating load past the window for MINUTES, RSS sampled every 5 s (make test runs 90 s).
MINUTES ?= 10
soak: build
	$(BUILD)/tests/soak $(BUILD)/server/txstats-server $$(( $(MINUTES) * 60 )) 60000

# The live view: /metrics through promtool, the dashboard in Debian's Chromium (playwright-core).
# Screenshots go to $(BUILD)/dashboard.png and $(BUILD)/dashboard-phone.png.
test-browser: build
	@./scripts/deps.sh live
	./tests/check_metrics.sh $(BUILD)/server/txstats-server
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	node tests/browser/dashboard.test.mjs $(BUILD)/server/txstats-server $(BUILD)

# Benchmarks (not part of make test): library, HTTP vs bare civetweb and nginx, sustained load.
# Writes bench/RESULTS.md and plots. BENCH_SECONDS per wrk run.
BENCH_SECONDS ?= 5
bench:
	@./scripts/deps.sh bench
	cmake -S . -B $(BUILD)-bench -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DTXSTATS_BUILD_EXAMPLES=OFF
	cmake --build $(BUILD)-bench -j $(JOBS)
	./bench/run.sh $(BUILD)-bench $(BENCH_SECONDS)

# libFuzzer (clang) on each target for SECONDS; seeds in tests/fuzz/corpus, findings in build-fuzz.
SECONDS ?= 60
fuzz:
	@./scripts/deps.sh fuzz
	cmake -S . -B $(BUILD)-fuzz -DCMAKE_C_COMPILER=clang -DTXSTATS_FUZZ=ON -DBUILD_SHARED_LIBS=OFF \
	    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF -DTXSTATS_BUILD_EXAMPLES=OFF
	cmake --build $(BUILD)-fuzz -j $(JOBS)
	./tests/fuzz/run.sh $(BUILD)-fuzz $(SECONDS)

install: build
	cmake --install $(BUILD)

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

format-check:
	git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan $(BUILD)-fuzz
