#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Developer entry point: installs missing Debian packages, builds with CMake + Ninja, and either
# starts tundrad or runs every test.  Usage: tools/dev.sh deps|build|run|test|sanitize [args for
# tundrad]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(g++ cmake ninja-build pkg-config git uuid-dev libfmt-dev libspdlog-dev libgtest-dev
          libgmock-dev libbenchmark-dev libreadline-dev libtomlplusplus-dev)

deps() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "dev.sh: installing missing Debian packages: ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        export DEBIAN_FRONTEND=noninteractive
        $sudo apt-get update -qq
        $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}

BUILD_DIR=${BUILD_DIR:-build}
build() {
    deps
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} \
        -DTUNDRA_WERROR=${TUNDRA_WERROR:-ON} ${CMAKE_ARGS:-} >/dev/null
    cmake --build "$BUILD_DIR"
}

case "${1:-}" in
    deps) deps ;;
    build) build ;;
    run) shift; build; exec "$BUILD_DIR/src/tundrad" "$@" ;;
    test)
        build
        ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" --timeout 300
        ;;
    sanitize)
        # Every test again under AddressSanitizer + UndefinedBehaviorSanitizer (Debug build in
        # build-asan/). The packaging test is left out: it rightly refuses a .deb that would
        # need libasan.
        BUILD_DIR=build-asan BUILD_TYPE=Debug TUNDRA_WERROR=OFF \
            CMAKE_ARGS="-DTUNDRA_SANITIZE=ON ${CMAKE_ARGS:-}" build
        ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            ctest --test-dir build-asan --output-on-failure -j "$(nproc)" --timeout 600 \
            -E packaging_install_test
        ;;
    *) echo "usage: tools/dev.sh deps|build|run|test|sanitize" >&2; exit 2 ;;
esac
