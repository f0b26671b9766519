#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Packaging check on a built tree: `cmake --install` lays out the binaries, unit, example config
# and man pages; `cpack -G DEB` builds a .deb whose Depends cover every shared library the
# binaries need, and that marks /etc/tundra/tundra.conf as a conffile.
# Usage: install_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
work=$(mktemp -d /tmp/tundra-pkg-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. cmake --install into a staging directory.
DESTDIR="$work/stage" cmake --install "$build" --prefix /usr >/dev/null
for f in usr/bin/tundrad usr/bin/tundra-cli usr/bin/tundra-bench etc/tundra/tundra.conf \
         usr/lib/systemd/system/tundrad.service usr/share/man/man8/tundrad.8 \
         usr/share/man/man5/tundra.conf.5 usr/share/man/man1/tundra-cli.1; do
    [ -e "$work/stage/$f" ] || fail "cmake --install did not install /$f"
done
grep -q '^ExecStart=/usr/bin/tundrad --config /etc/tundra/tundra.conf' \
    "$work/stage/usr/lib/systemd/system/tundrad.service" || fail "unit ExecStart is wrong"
"$work/stage/usr/bin/tundrad" --check-config "$work/stage/etc/tundra/tundra.conf" >/dev/null \
    || fail "the installed example config does not pass --check-config"

# 2. The same with another prefix: the unit follows the binary.
DESTDIR="$work/local" cmake --install "$build" --prefix /usr/local >/dev/null
unit=$(find "$work/local" -name tundrad.service -print -quit)
[ -n "$unit" ] || fail "no unit installed with --prefix /usr/local"
grep -q '^ExecStart=/usr/local/bin/tundrad ' "$unit" || fail "unit not rewritten for /usr/local"

# 3. The Debian package.
(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/deb" >/dev/null) \
    || fail "cpack failed"
debs=("$work"/deb/*.deb)
deb=${debs[0]}
[ -f "$deb" ] || fail "cpack produced no .deb"
dpkg-deb -I "$deb" conffiles | grep -x '/etc/tundra/tundra.conf' >/dev/null \
    || fail "tundra.conf is not a conffile"
depends=$(dpkg-deb -f "$deb" Depends)
contents=$(dpkg-deb -c "$deb")
grep -q '\./usr/bin/tundrad$' <<<"$contents" || fail ".deb lacks /usr/bin/tundrad"
grep -q '\./usr/lib/systemd/system/tundrad.service$' <<<"$contents" || fail ".deb lacks the unit"

# Every NEEDED library of every binary must come from a package listed in Depends.
for bin in tundrad tundra-cli tundra-bench; do
    for lib in $(objdump -p "$work/stage/usr/bin/$bin" | awk '/NEEDED/ {print $2}'); do
        path=$(ldconfig -p | awk -v l="$lib" '$1 == l && !found {print $NF; found = 1}')
        [ -n "$path" ] || fail "$bin needs $lib, which is not installed here"
        real=$(readlink -f "$path")
        pkg=$(dpkg -S "$path" 2>/dev/null || dpkg -S "$real" 2>/dev/null || true)
        pkg=${pkg%%:*}
        [ -n "$pkg" ] || fail "no Debian package owns $path ($bin needs $lib)"
        tr ',' '\n' <<<"$depends" | sed 's/^ *//; s/ .*//' | grep -x "$pkg" >/dev/null \
            || fail "$bin needs $lib from package $pkg, missing in Depends: $depends"
    done
done
echo "packaging OK: $(basename "$deb"), Depends: $depends"
