#!/bin/sh
# `make python`: builds CPython 3.13 with profile-guided and link-time optimisation (--enable-optimizations
# --with-lto, a static libpython) from Debian's source tarball into PREFIX, where scripts/pick-python.sh finds it
# and prefers it. Why: pyenv's interpreters and most self-built ones are default builds (no PGO, a shared
# libpython); the optimised build runs proftpy's command path 10-20 % faster (docs/performance.md, "An optimised
# interpreter"). Takes 30-40 minutes on 2 cores (CPython's build runs its test suite to collect the profile), so
# `make test` and `make run` never build it. PYTHON_TARBALL=FILE builds from a tarball already downloaded.
set -e
VERSION=3.13.5
PREFIX=${PREFIX:-/opt/proftpy/python-$VERSION}
# trixie's python3.13 source package; the checksum is the one its Sources index gives
URL=http://deb.debian.org/debian/pool/main/p/python3.13/python3.13_$VERSION.orig.tar.xz
SHA256=93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640

if [ -x "$PREFIX/bin/python3.13" ]; then
    echo "$PREFIX/bin/python3.13 is there already (remove $PREFIX to build it again)"
    exit 0
fi
missing=""
for pkg in gcc make libssl-dev zlib1g-dev libffi-dev libbz2-dev liblzma-dev libsqlite3-dev libreadline-dev \
           uuid-dev xz-utils curl; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null \
            || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null; }
    else
        echo "build-python: missing Debian packages:$missing (run as root, or install them)" >&2
        exit 1
    fi
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tarball=${PYTHON_TARBALL:-$work/python.tar.xz}
if [ -z "$PYTHON_TARBALL" ]; then
    echo "build-python: fetching $URL"
    curl -fsS -o "$tarball" "$URL"
fi
echo "$SHA256  $tarball" | sha256sum -c --quiet - || { echo "build-python: $tarball: wrong checksum" >&2; exit 1; }
tar -xJf "$tarball" -C "$work"
cd "$work/Python-$VERSION"
echo "build-python: building CPython $VERSION (PGO + LTO) into $PREFIX; the log is $work/build.log until it ends"
if ! { ./configure --prefix="$PREFIX" --enable-optimizations --with-lto && make -j"$(nproc)" && make altinstall; } \
        >"$work/build.log" 2>&1; then
    tail -40 "$work/build.log" >&2
    echo "build-python: the build failed (the end of its log is above)" >&2
    exit 1
fi
"$PREFIX/bin/python3.13" -c 'import ssl, ctypes, sqlite3, zlib, lzma, bz2' \
    || { echo "build-python: $PREFIX/bin/python3.13 lacks a module proftpy or pip needs" >&2; exit 1; }
echo "build-python: done; scripts/pick-python.sh now prints $PREFIX/bin/python3.13"
