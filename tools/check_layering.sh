#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Enforces the module dependency direction of docs/ARCHITECTURE.md by grepping #include lines.
set -u
cd "$(dirname "$0")/.."
fail=0
check() {  # check DIR FORBIDDEN-PATTERN WHY
    local hits
    hits=$(grep -rnE "$2" "$1" 2>/dev/null || true)
    if [ -n "$hits" ]; then
        echo "layering violation ($3):"
        echo "$hits"
        fail=1
    fi
}
check src/net '#include "(tundra/|proto/|core/|server/|client/)' "net moves bytes only"
check src/proto '#include ("(net|core|server|client|common)/|<sys/(socket|epoll)\.h>)' "proto is pure"
check src/core '#include ("(net|server|client)/|<sys/(socket|epoll)\.h>|<chrono>)' "core is pure (time via common::Clock)"
check src/common '#include "(proto|net|core|server|client)/' "common depends on nothing"
check src/client '#include "(net|core|server)/' "the client library uses proto only"
check include/tundra '#include "(net|core|server|common)/' "the public API stands alone"
check tools/cli '#include "(net|core|server)/' "the CLI uses the client library"
[ $fail -eq 0 ] && echo "layering OK"
exit $fail
