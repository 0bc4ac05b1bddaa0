# Thin wrapper over CMake. `make test` and `make run` install what is missing first.
BUILD      ?= build
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
LISTEN     ?= 127.0.0.1:8080
ARGS       ?=
CMAKE_ARGS ?=
PREFIX     ?= /usr/local
DESTDIR    ?=

.PHONY: all deps deps-test build test check run test-sanitize test-browser test-api test-deb deb \
	crash-test fuzz fuzz-http soak bench bench-features install clean format format-check

all: build

deps:
	@./scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DTXSTATS_WERROR=ON $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# The test-only packages (cmocka), then configure again so that the tests exist.
deps-test: deps
	@./scripts/deps.sh test
	@cmake -S . -B $(BUILD) -DTXSTATS_WERROR=ON $(CMAKE_ARGS) >/dev/null

# Warnings are errors; every test (unit, install/consume, server integration).
test: deps-test build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The fast part, in seconds: library unit tests and the command line (no server load tests).
check: deps-test build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L 'unit|cli'

# Server options after ARGS, e.g. make run ARGS='--window-ms 30000 --access-log -'.
run: build
	$(BUILD)/server/txstats-server --listen $(LISTEN) $(ARGS)

# ASan+UBSan over every test, TSan over the concurrency tests; separate build directories.
test-sanitize: deps-test
	cmake -S . -B $(BUILD)-asan -DTXSTATS_WERROR=ON -DTXSTATS_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS) -LE 'install|crash|soak|deb'
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(BUILD)-asan/tests/crash_test $(BUILD)-asan/server/txstats-server 5
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(BUILD)-asan/tests/crash_test $(BUILD)-asan/server/txstats-server 5 0 keys
	cmake -S . -B $(BUILD)-tsan -DTXSTATS_WERROR=ON -DTXSTATS_SANITIZE=thread -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD)-tsan -j $(JOBS)
	cd $(BUILD)-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -L concurrency

# The request-framing differential test against Node's llhttp, STREAMS streams from SEED.
STREAMS ?= 200000
SEED    ?= $(shell date +%s)
fuzz-http: build
	node tests/smuggling/differential.js $(BUILD)/server/txstats-server $(STREAMS) $(SEED) 8

# kill -9 the server at random moments, N times (make test runs 20).
N ?= 200
crash-test: deps-test build
	$(BUILD)/tests/crash_test $(BUILD)/server/txstats-server $(N)

# Saturating load past the window for MINUTES, RSS sampled every 5 s (make test runs 90 s).
MINUTES ?= 10
soak: deps-test build
	$(BUILD)/tests/soak $(BUILD)/server/txstats-server $$(( $(MINUTES) * 60 )) 60000

# The live view: /metrics through promtool, the dashboard in Debian's Chromium (playwright-core).
# Screenshots go to $(BUILD)/dashboard.png and $(BUILD)/dashboard-phone.png.
test-browser: build
	@./scripts/deps.sh live
	./tests/check_metrics.sh $(BUILD)/server/txstats-server
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	node tests/browser/dashboard.test.mjs $(BUILD)/server/txstats-server $(BUILD)

# The OpenAPI description: Redocly's linter, then the real server's answers against its schemas.
test-api: build
	@./scripts/deps.sh live
	cd tests/openapi && npm ci --no-audit --no-fund --loglevel=error
	cd tests/openapi && ./node_modules/.bin/redocly lint ../../server/openapi.json
	node tests/openapi/contract.test.mjs $(BUILD)/server/txstats-server server/openapi.json

# Debian packages into $(BUILD)-deb: libtxstats<soversion>, libtxstats-dev, txstats-server.
deb: deps
	@./scripts/deps.sh deb
	./scripts/deb.sh $(BUILD)-deb

# Build the packages, apt-get install them here, check them, remove them (root; make test runs it).
test-deb: deps-test build
	@./scripts/deps.sh deb
	cd $(BUILD) && ctest --output-on-failure -L deb

# Benchmarks (not part of make test): library, HTTP vs bare civetweb and nginx, sustained load.
# Writes bench/RESULTS.md and plots. BENCH_SECONDS per wrk run.
BENCH_SECONDS ?= 5
bench:
	@./scripts/deps.sh bench
	cmake -S . -B $(BUILD)-bench -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DTXSTATS_BUILD_EXAMPLES=OFF
	cmake --build $(BUILD)-bench -j $(JOBS)
	./bench/run.sh $(BUILD)-bench $(BENCH_SECONDS)

# Only the section of bench/features.sh (keys, batches, checkpoints), printed, not written.
bench-features:
	@./scripts/deps.sh bench
	cmake -S . -B $(BUILD)-bench -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DTXSTATS_BUILD_EXAMPLES=OFF
	cmake --build $(BUILD)-bench -j $(JOBS)
	./bench/features.sh $(BUILD)-bench $(BENCH_SECONDS) 3

# libFuzzer (clang) on each target for SECONDS; seeds in tests/fuzz/corpus, findings in build-fuzz.
SECONDS ?= 60
fuzz:
	@./scripts/deps.sh fuzz
	cmake -S . -B $(BUILD)-fuzz -DCMAKE_C_COMPILER=clang -DTXSTATS_FUZZ=ON -DBUILD_SHARED_LIBS=OFF \
	    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF -DTXSTATS_BUILD_EXAMPLES=OFF
	cmake --build $(BUILD)-fuzz -j $(JOBS)
	./tests/fuzz/run.sh $(BUILD)-fuzz $(SECONDS)

# Into $(PREFIX) (default /usr/local), under $(DESTDIR) when set; the server finds libtxstats
# relative to itself, so no ldconfig is needed.
install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

format-check:
	git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan $(BUILD)-fuzz $(BUILD)-deb
