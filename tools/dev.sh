#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Developer entry point: installs missing Debian packages, builds with CMake + Ninja, and either
# starts tundrad or runs every test.
# Usage: tools/dev.sh deps|build|run|test|sanitize|format|format-check|tidy|ci [args for tundrad]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(g++ cmake ninja-build pkg-config git uuid-dev libfmt-dev libspdlog-dev libgtest-dev
          libgmock-dev libbenchmark-dev libreadline-dev libtomlplusplus-dev libsqlite3-dev zlib1g-dev
          nlohmann-json3-dev libssl-dev libsodium-dev)

# Linters, installed only by the subcommands that use them.
LINT_PACKAGES=(clang-format clang-tidy)

deps() {
    local missing=()
    for p in "${PACKAGES[@]}" "$@"; do
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
    # ccache, where a developer has it, makes rebuilds across build dirs cheap; CI needs none.
    local launcher=""
    if command -v ccache >/dev/null 2>&1; then
        launcher="-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"
    fi
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} \
        -DTUNDRA_WERROR=${TUNDRA_WERROR:-ON} $launcher ${CMAKE_ARGS:-} >/dev/null
    cmake --build "$BUILD_DIR"
}

# Every C++ file the project owns (generated and build trees excluded).
cxx_files() {
    git ls-files -- '*.h' '*.cc' '*.cpp'
}

case "${1:-}" in
    deps) deps ;;
    build) build ;;
    run)
        # The store lives under build/ (later flags, e.g. another --data-dir, override it).
        shift; build; mkdir -p "$BUILD_DIR/data"
        exec "$BUILD_DIR/src/tundrad" --data-dir "$BUILD_DIR/data" "$@"
        ;;
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
    format)
        deps "${LINT_PACKAGES[@]}"
        cxx_files | xargs clang-format -i
        ;;
    format-check)
        # Fails, listing the files, if any C++ file differs from what .clang-format makes of it.
        deps "${LINT_PACKAGES[@]}"
        bad=$(cxx_files | while read -r f; do
            clang-format --style=file "$f" | cmp -s - "$f" || echo "$f"
        done)
        if [ -n "$bad" ]; then
            echo "clang-format: these files need 'tools/dev.sh format':" >&2
            echo "$bad" >&2
            exit 1
        fi
        echo "clang-format OK ($(cxx_files | wc -l) files)"
        ;;
    tidy)
        # clang-tidy with the checked-in .clang-tidy on src/ and tools/ (compile database from
        # the normal build). Any finding fails.
        deps "${LINT_PACKAGES[@]}"
        build
        run-clang-tidy -quiet -p "$BUILD_DIR" -j "$(nproc)" "$PWD/(src|tools)/.*\.cc\$" \
            >"$BUILD_DIR/clang-tidy.log" 2>&1 || { grep -E "(warning|error):" \
            "$BUILD_DIR/clang-tidy.log" | sort -u >&2; echo "clang-tidy failed" >&2; exit 1; }
        echo "clang-tidy OK"
        ;;
    ci)
        # What .ci/run does: layering, formatting, the README's test command, clang-tidy, then
        # the whole suite again under ASan+UBSan.
        tools/check_layering.sh
        "$0" format-check
        "$0" test
        "$0" tidy
        "$0" sanitize
        ;;
    *) echo "usage: tools/dev.sh deps|build|run|test|sanitize|format|format-check|tidy|ci" >&2
       exit 2 ;;
esac
