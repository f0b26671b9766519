#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Enforces the module dependency direction of docs/ARCHITECTURE.md. Every project #include
# (quoted or angled) of every C++ file under src/, include/, tools/ and tests/ is mapped to the
# module it belongs to and checked against the allow-list of the including directory; a few
# system headers are forbidden where they would break purity. An include the script cannot
# place is an error too, so nothing slips through by spelling.
# Usage: tools/check_layering.sh [ROOT]   (ROOT defaults to this checkout; the test passes a
# scratch tree with planted violations).
set -u
cd "${1:-$(dirname "$0")/..}"

# Directory -> modules it may include (its own module is always allowed).
declare -A ALLOW=(
    [src/common]=""
    [src/proto]="proto"
    [src/net]="common"
    [src/core]="proto common"
    [src/auth]="core proto common"
    [src/storage]="core proto common"
    [src/server]="core auth net storage proto common"
    [src/daemon]="server auth net core storage proto common"
    [src/client]="proto client_api"
    [include/tundra]="proto client_api"
    [tools/cli]="client client_api proto"
    [tools/bench]="client client_api net core proto common"
    [tools/examples]="client_api proto"
    [tests]="common proto net core auth storage server client client_api cli bench support unit integration fuzz"
)
# Directory -> system headers it must not include (extended regex on the header name).
declare -A FORBID_SYS=(
    [src/common]=""
    [src/proto]="^(sys/socket|sys/epoll|netinet/.*|arpa/.*|chrono|thread)\.?h?$"
    [src/core]="^(sys/socket|sys/epoll|netinet/.*|arpa/.*|chrono|thread)\.?h?$"
    [src/auth]="^(sys/socket|sys/epoll|netinet/.*|arpa/.*|chrono|thread)\.?h?$"
    [src/net]="^tundra/"
    [src/client]=""
)
# Directory -> the module name its own files use in includes.
declare -A SELF=(
    [src/common]=common [src/proto]=proto [src/net]=net [src/core]=core [src/auth]=auth [src/storage]=storage
    [src/server]=server [src/daemon]=daemon [src/client]=client [include/tundra]=proto
    [tools/cli]=cli [tools/bench]=bench [tools/examples]=examples [tests]=tests
)

# Sets `mod` to the module an include path belongs to, or to "" for a system/third-party header.
module_of() {
    case "$1" in
        tundra/client.h) mod=client_api ;;
        tundra/*) mod=proto ;;
        common/* | proto/* | net/* | core/* | auth/* | storage/* | server/* | daemon/* | client/* \
            | cli/* | bench/*)
            mod=${1%%/*} ;;
        support/* | unit/* | integration/* | fuzz/*) mod=${1%%/*} ;;
        *) mod="" ;;
    esac
}

fail=0
report() {
    echo "layering violation: $1"
    fail=1
}

for dir in "${!ALLOW[@]}"; do
    [ -d "$dir" ] || continue
    allowed=" ${SELF[$dir]} ${ALLOW[$dir]} "
    forbid=${FORBID_SYS[$dir]:-}
    while IFS= read -r file; do
        lineno=0
        while IFS= read -r line; do
            lineno=$((lineno + 1))
            [[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*([\"\<])([^\"\>]+)[\"\>] ]] \
                || continue
            quote=${BASH_REMATCH[1]}
            inc=${BASH_REMATCH[2]}
            module_of "$inc"
            if [ -n "$forbid" ] && [[ $inc =~ $forbid ]]; then
                report "$file:$lineno includes <$inc>, which $dir must not use"
                continue
            fi
            if [ -z "$mod" ]; then
                # Quoted includes must name a module directory (or sit beside the file).
                if [ "$quote" = '"' ] && [ ! -e "$(dirname "$file")/$inc" ]; then
                    report "$file:$lineno: \"$inc\" belongs to no known module"
                fi
                continue
            fi
            if [[ $allowed != *" $mod "* ]]; then
                report "$file:$lineno: $dir may not include $inc (module $mod)"
            fi
        done <"$file"
    done < <(find "$dir" -type f \( -name '*.h' -o -name '*.cc' -o -name '*.cpp' \))
done

# The main() of tundrad is only in src/daemon: nothing else may include or compile it.
if grep -rn 'daemon/main' --include=CMakeLists.txt tests tools 2>/dev/null; then
    report "tests and tools must not build src/daemon/main.cc"
fi

[ $fail -eq 0 ] && echo "layering OK"
exit $fail
