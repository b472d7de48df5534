# Thin wrapper around CMake: `make demo` and `make test` install what is
# missing from Debian, build into build/, and run.
BUILD   ?= build
CMAKE_FLAGS ?=
PACKAGES = cmake make gcc clang pkg-config python3 redis-server valgrind \
	librdkafka-dev libhiredis-dev libevent-dev libjansson-dev \
	libcmocka-dev libsystemd-dev libclang-rt-14-dev chromium

.PHONY: all build deps demo test clean

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

clean:
	rm -rf $(BUILD)
