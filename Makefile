# Thin wrapper around CMake: `make demo` and `make test` install what is
# missing from Debian, build into build/, and run. `make bench` (not part
# of `make test`) measures journeyd against its ceiling and a Python peer;
# the peer needs two more Debian packages.
BUILD   ?= build
CMAKE_FLAGS ?=
PACKAGES = cmake make gcc clang pkg-config python3 redis-server valgrind \
	librdkafka-dev libhiredis-dev libevent-dev libjansson-dev \
	libcmocka-dev libsystemd-dev zlib1g-dev libclang-rt-14-dev chromium \
	systemd

BENCH_PACKAGES = python3-confluent-kafka python3-redis

.PHONY: all build deps demo test bench clean

all: build

deps:
	@./.ci/deps $(PACKAGES)

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$$(nproc)

test: build
	cd $(BUILD) && ctest --output-on-failure -j2

demo: build
	python3 tests/demo.py --build $(BUILD)

# Results: $(BUILD)/bench-results.md (and .json). BENCH_FLAGS=--quick for
# a short try, --profile for a callgrind run of journeyd.
bench: build
	@./.ci/deps $(BENCH_PACKAGES)
	python3 tests/bench/bench.py --build $(BUILD) $(BENCH_FLAGS)

clean:
	rm -rf $(BUILD)
