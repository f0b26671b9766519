#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tools/check_layering.sh must pass a clean tree and catch each kind of violation: a module
# including one it may not (quoted and angled), a forbidden system header in a pure module, and
# a quoted include that belongs to no module. Each case plants one violation in a scratch tree.
set -u
script=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

make_tree() {  # a minimal clean tree
    rm -rf "$tmp/t"
    mkdir -p "$tmp/t"/{src/common,src/proto,src/net,src/core,src/storage,src/server,src/client}
    mkdir -p "$tmp/t"/include/tundra
    mkdir -p "$tmp/t"/{tools/cli,tests/unit}
    echo '#include <string>' >"$tmp/t/src/common/clock.h"
    echo '#include "tundra/protocol.h"' >"$tmp/t/src/proto/codec.cc"
    echo '#include "common/clock.h"' >"$tmp/t/src/net/event_loop.cc"
    printf '#include "core/x.h"\n#include "tundra/codec.h"\n' >"$tmp/t/src/core/routing.cc"
    printf '#include "core/x.h"\n#include "common/clock.h"\n' >"$tmp/t/src/storage/store.cc"
    printf '#include "net/event_loop.h"\n#include "core/x.h"\n#include "storage/store.h"\n' \
        >"$tmp/t/src/server/server.cc"
    echo '#include "tundra/client.h"' >"$tmp/t/tools/cli/main.cc"
    echo '#include "server/server.h"' >"$tmp/t/tests/unit/x_test.cc"
}

expect() {  # expect pass|fail DESCRIPTION
    local out rc
    out=$(bash "$script" "$tmp/t" 2>&1)
    rc=$?
    if { [ "$1" = pass ] && [ $rc -ne 0 ]; } || { [ "$1" = fail ] && [ $rc -eq 0 ]; }; then
        echo "FAIL: $2 (expected $1, exit $rc): $out"
        failures=$((failures + 1))
    else
        echo "ok: $2"
    fi
}

make_tree
expect pass "clean tree"

make_tree
echo '#include "tundra/protocol.h"' >>"$tmp/t/src/common/clock.h"
expect fail "common including the protocol header"

make_tree
echo '#include <tundra/protocol.h>' >>"$tmp/t/src/common/clock.h"
expect fail "common including the protocol header with angle brackets"

make_tree
echo '#include "core/x.h"' >>"$tmp/t/src/net/event_loop.cc"
expect fail "net including core"

make_tree
echo '#include <sys/epoll.h>' >>"$tmp/t/src/core/routing.cc"
expect fail "core including sys/epoll.h"

make_tree
echo '#include <chrono>' >>"$tmp/t/src/proto/codec.cc"
expect fail "proto reading the clock header"

make_tree
echo '#include "server/server.h"' >>"$tmp/t/tools/cli/main.cc"
expect fail "the CLI including server internals"

make_tree
echo '#include "nowhere/thing.h"' >>"$tmp/t/src/core/routing.cc"
expect fail "a quoted include of no known module"

make_tree
echo '#include "tundra/client.h"' >>"$tmp/t/src/core/routing.cc"
expect fail "core including the client library API"

make_tree
echo '#include "storage/store.h"' >>"$tmp/t/src/core/routing.cc"
expect fail "core including storage (the core stays pure: storage depends on it)"

make_tree
echo '#include "net/event_loop.h"' >>"$tmp/t/src/storage/store.cc"
expect fail "storage including net"

make_tree
echo '#include "server/server.h"' >>"$tmp/t/src/storage/store.cc"
expect fail "storage including server"

make_tree
mkdir -p "$tmp/t/src/auth"
printf '#include "core/authenticator.h"\n#include "tundra/protocol.h"\n' >"$tmp/t/src/auth/jwt.cc"
echo '#include "auth/jwt.h"' >>"$tmp/t/src/server/server.cc"
expect pass "auth using the core's identity interface, server using auth"

make_tree
mkdir -p "$tmp/t/src/auth"
echo '#include "net/event_loop.h"' >"$tmp/t/src/auth/jwt.cc"
expect fail "auth including net"

make_tree
echo '#include "auth/jwt.h"' >>"$tmp/t/src/core/routing.cc"
expect fail "core including auth"

echo "$((12 - failures)) passed, $failures failed"
[ $failures -eq 0 ]
