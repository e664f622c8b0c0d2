#!/bin/sh
# Build the CPython that dist/go_processes.ext is frozen from, for every x86_64 Linux with
# glibc >= 2.17: CPython, OpenSSL, zlib and libffi from Debian's source packages, compiled by
# `zig cc -target x86_64-linux-gnu.2.17` (PyPI `ziglang`), which links against that glibc's
# symbol versions whatever the build machine has. OpenSSL, zlib and libffi are linked in
# statically, so the bundle needs nothing from a host but glibc's own libraries.
#
# The result is cached outside the checkout, keyed by every input (this script, Setup.local, the
# compiler's version, the glibc target and the exact Debian source versions, whose .dsc checksums
# apt verified against Debian's signed release files), so only the first build on a machine pays
# for it (about 6 minutes on 2 cores). Prints the interpreter's path as its last line.
#
# Debian's packaging patches (install layout, multiarch) are not applied to CPython, its security
# and bug-fix backports are: every patch of debian/patches/series from SECURITY_FROM on.
#
# Environment: HOST_PYTHON (runs pip for ziglang, default python3), GO_PROCESSES_CACHE (default
# ${XDG_CACHE_HOME:-~/.cache}/osquery-go-processes), DEBIAN_MIRROR, DEBIAN_SUITE.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
host_python=${HOST_PYTHON:-python3}
cache=${GO_PROCESSES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/osquery-go-processes}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=${DEBIAN_SUITE:-bookworm}
glibc=2.17
target=x86_64-linux-gnu.$glibc
zig_version=0.17.1
# CPython's Debian patch series: everything after this one is an upstream fix or a CVE backport.
SECURITY_FROM=shutdown-deadlock.diff
packages="python3.11 openssl zlib libffi"
jobs=$(nproc 2>/dev/null || echo 2)

mkdir -p "$cache"
log() { echo "build-python: $*" >&2; }

# -- the compiler: zig from PyPI, in a virtualenv of its own --------------------------------
tools=$cache/zig-$zig_version
if [ ! -x "$tools/venv/bin/python" ] || ! "$tools/venv/bin/python" -c 'import ziglang' 2>/dev/null; then
    rm -rf "$tools"
    "$host_python" -m venv "$tools/venv"
    "$tools/venv/bin/python" -m pip install -q --disable-pip-version-check "ziglang==$zig_version"
fi
zig=$("$tools/venv/bin/python" -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')
# zig wants CC, AR and RANLIB as single commands. -fno-sanitize=undefined: zig compiles C with UBSan
# traps by default, which CPython's and OpenSSL's deliberate overflow idioms would hit. `-x c` for
# a compile from standard input (waf's `cc -dM -E -`), or zig falls back to a bad clang triple.
mkdir -p "$tools/bin"
cat >"$tools/bin/cc" <<EOF
#!/bin/sh
for a in "\$@"; do [ "\$a" = - ] && exec "$zig" cc -target $target -fno-sanitize=undefined -x c "\$@"; done
exec "$zig" cc -target $target -fno-sanitize=undefined "\$@"
EOF
# C++ (thrift's accelerator module): zig links its own libc++ statically, where g++ would make the
# bundle carry the build machine's libstdc++ and with it that machine's glibc floor.
printf '#!/bin/sh\nexec "%s" c++ -target %s -fno-sanitize=undefined "$@"\n' "$zig" "$target" >"$tools/bin/c++"
printf '#!/bin/sh\nexec "%s" ar "$@"\n' "$zig" >"$tools/bin/ar"
printf '#!/bin/sh\nexec "%s" ranlib "$@"\n' "$zig" >"$tools/bin/ranlib"
chmod 0755 "$tools/bin/cc" "$tools/bin/c++" "$tools/bin/ar" "$tools/bin/ranlib"

# -- the sources: Debian's, through a private apt state (the machine's apt setup is untouched) --
apt=$cache/apt
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/etc"
printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' "$mirror" "$suite" \
    >"$apt/etc/sources.list"
set -- -o "Dir::Etc::SourceList=$apt/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o Dir::State::status=/dev/null \
    -o APT::Sandbox::User=root -o Debug::NoLocking=1
apt-get "$@" -qq update >&2
versions=""
for p in $packages; do
    v=$(apt-cache "$@" showsrc "$p" | sed -n 's/^Version: //p' | sort -V | tail -n 1)
    [ -n "$v" ] || { log "no source package $p in $suite"; exit 1; }
    versions="$versions $p=$v"
done
key=$( (echo "$versions $target"; "$zig" version; cat "$0" "$here/Setup.local") | sha256sum | cut -c1-16)
prefix=$cache/python-$key
# One build of a key at a time (two checkouts running make dist at once wait for each other).
exec 9>"$cache/.lock-$key"
flock 9
if [ -x "$prefix/bin/python3" ] && [ -f "$prefix/.complete" ]; then
    log "cached: $prefix ($versions )"
    echo "$prefix/bin/python3"
    exit 0
fi
log "building $prefix ($versions ) for $target"

work=$cache/work-$key
rm -rf "$work" "$prefix"
mkdir -p "$work/src" "$work/deps"
deps=$work/deps
# shellcheck disable=SC2086
(cd "$work/src" && apt-get "$@" -qq source --download-only $versions >&2)
for dsc in "$work"/src/*.dsc; do
    # apt checked every file against the Sources index of Debian's signed release; dpkg-source
    # checks them again against the .dsc's checksums (it cannot check the uploader's signature
    # without Debian's keyring of uploaders, and warns). Patches are applied below.
    (cd "$work/src" && dpkg-source --skip-patches -x "$dsc" >>"$work/unpack.log" 2>&1) \
        || { tail -n 20 "$work/unpack.log" >&2; log "unpacking $dsc failed"; exit 1; }
done
srcdir() { find "$work/src" -mindepth 1 -maxdepth 1 -type d -name "$1-*" | head -n 1; }

export CC="$tools/bin/cc" CXX="$tools/bin/c++" AR="$tools/bin/ar" RANLIB="$tools/bin/ranlib"
export CFLAGS="-O2 -fPIC" PKG_CONFIG_LIBDIR="$deps/lib/pkgconfig" PKG_CONFIG_PATH=""
started=$(date +%s)
# step NAME DIR COMMAND...: run in DIR with the output in $work/NAME.log, its tail on failure.
step() {
    name=$1 dir=$2
    shift 2
    log "$name"
    (cd "$dir" && "$@") >"$work/$name.log" 2>&1 || { tail -n 60 "$work/$name.log" >&2; log "$name failed"; exit 1; }
}

# -- zlib, static ----------------------------------------------------------------------------
step zlib "$(srcdir zlib)" sh -c './configure --static --prefix="$1" && make -j"$2" libz.a && make install' - "$deps" "$jobs"

# -- libffi, static --------------------------------------------------------------------------
d=$(srcdir libffi)
# clang >= 16 rejects the implicit declaration of open_temp_exec_file() in tramp.c (libffi 3.4.4).
grep -q 'int open_temp_exec_file' "$d/src/tramp.c" || sed -i '1i int open_temp_exec_file (void);' "$d/src/tramp.c"
step libffi "$d" sh -c './configure --prefix="$1" --libdir="$1/lib" --disable-shared --enable-static --with-pic \
    --disable-docs --disable-multi-os-directory && make -j"$2" && make install' - "$deps" "$jobs"

# -- OpenSSL, static, no engines or providers to load from disk --------------------------------
# --openssldir only sets where OpenSSL looks by default; the extension chooses the host's CA bundle
# itself (go_processes.vulndb's host_ca_bundle), since distributions keep it in different places.
step openssl "$(srcdir openssl)" sh -c './Configure linux-x86_64 no-shared no-tests no-module no-engine -fPIC \
    --prefix="$1" --libdir=lib --openssldir=/etc/ssl && make -j"$2" && make install_sw' - "$deps" "$jobs"

# -- CPython ----------------------------------------------------------------------------------
d=$(srcdir python3.11)
series=$d/debian/patches/series
if [ -f "$series" ]; then
    sed -n "/^$SECURITY_FROM\$/,\$p" "$series" | grep -v '^#' | while read -r p; do
        [ -n "$p" ] || continue
        patch -d "$d" -p1 --quiet --forward <"$d/debian/patches/$p" >&2 || { log "patch $p failed"; exit 1; }
    done
fi
cp "$here/Setup.local" "$d/Modules/Setup.local"
# The CVE-2026-4224 backport makes pyexpat.c include an internal header, which Debian's own module
# setup (not applied here) allows with Py_BUILD_CORE_MODULE; upstream 3.12 defines it in the file.
if grep -q '"pycore_ceval.h"' "$d/Modules/pyexpat.c" && ! grep -q Py_BUILD_CORE_MODULE "$d/Modules/pyexpat.c"; then
    sed -i '1i #ifndef Py_BUILD_CORE_BUILTIN\n#  define Py_BUILD_CORE_MODULE 1\n#endif' "$d/Modules/pyexpat.c"
fi
# setup.py adds the build machine's multiarch include and library directories (host -dev packages).
sed -i 's/^        self.add_multiarch_paths()$/        pass  # no host multiarch paths: portable build/' "$d/setup.py"
# zig's linker takes -soname, not -h; the stable-ABI libpython3.so is not built (PY3LIBRARY= below).
sed -i 's/-Wl,-h\$(INSTSONAME)/-Wl,-soname,$(INSTSONAME)/' "$d/Makefile.pre.in"
step python-configure "$d" ./configure --prefix="$prefix" --enable-shared --with-openssl="$deps" \
    --with-system-ffi --without-doc-strings --with-ensurepip=no \
    CPPFLAGS="-I$deps/include" LDFLAGS="-L$deps/lib -Wl,-rpath,$prefix/lib" \
    CFLAGS="-O2 -Wno-date-time" LIBFFI_CFLAGS="-I$deps/include" LIBFFI_LIBS="-L$deps/lib -lffi" \
    ZLIB_CFLAGS="-I$deps/include" ZLIB_LIBS="-L$deps/lib -lz"
step python-make "$d" make -j"$jobs" PY3LIBRARY=
step python-install "$d" make install PY3LIBRARY=
# Debug information is most of libpython's size (19 MB -> 4 MB).
find "$prefix" -type f \( -name '*.so' -o -name '*.so.*' -o -path '*/bin/python3.*' \) -exec strip --strip-debug {} + 2>/dev/null || true
grep -A3 'Failed to build these modules' "$work/python-make.log" >&2 && { log "modules failed to build"; exit 1; }
"$prefix/bin/python3" -c 'import ssl, hashlib, zlib, ctypes, json, pyexpat, _decimal; print(ssl.OPENSSL_VERSION)' >&2
# ensurepip's bundled wheels: the virtualenv the bundle is made in needs pip.
"$prefix/bin/python3" -m ensurepip --default-pip >/dev/null
echo "$versions $target zig $("$zig" version), built in $(($(date +%s) - started)) s" >"$prefix/.complete"
rm -rf "$work"
log "built $prefix in $(($(date +%s) - started)) s"
echo "$prefix/bin/python3"
