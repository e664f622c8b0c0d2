#!/bin/sh
# Build dist/go_processes.ext: one self-contained Linux executable (PyInstaller one-file) that
# needs no Python on the host, runs on every x86_64 Linux with glibc >= 2.17, and still starts
# where /tmp is mounted noexec.
#
# Steps (1 and 3 cached outside the checkout, keyed by their inputs; see packaging/python):
#   1. the interpreter the bundle is frozen from: CPython, OpenSSL, zlib and libffi built by
#      packaging/python/build.sh with `zig cc -target x86_64-linux-gnu.2.17` (a distribution's own
#      Python would tie the bundle to that distribution's glibc: 2.34+ for Debian 12's);
#   2. a private virtualenv of that interpreter with the pinned PyInstaller and this project (C
#      extensions without a manylinux wheel, thrift's, are compiled by the same compiler);
#   3. PyInstaller's bootloader rebuilt from the same release's sdist by the same compiler, with
#      pyinstaller/bootloader-noexec.patch (stock one-file extracts its shared libraries to
#      $TMPDIR or /tmp and dies there when /tmp is noexec; osqueryd gives no TMPDIR) and zlib
#      linked in (the stock bootloader needs the host's libz.so.1);
#   4. PyInstaller run on pyinstaller/go_processes.ext.spec.
# Environment: PYTHON (the interpreter that runs the build tools, default python3), BUILD_DIR,
# DIST_DIR, GO_PROCESSES_CACHE (see packaging/python/build.sh).
set -eu

script=build-ext.sh
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/common.sh"
build=${BUILD_DIR:-$root/build/packaging}
dist=${DIST_DIR:-$root/dist}
host_python=${PYTHON:-python3}
cache=${GO_PROCESSES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/osquery-go-processes}
export GO_PROCESSES_CACHE="$cache"
# The bootloader patch is written against this release; bump both together.
pyi_version=6.22.3

# -- 1. the portable interpreter ---------------------------------------------------------------
mkdir -p "$build" "$dist"
HOST_PYTHON="$host_python" sh "$here/python/build.sh" >"$build/interpreter"
python=$(tail -n 1 "$build/interpreter")
cc=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("CC").split()[0])')

# -- 2. the build virtualenv, remade when the interpreter changes -------------------------------
venv=$build/venv
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.interpreter" 2>/dev/null)" != "$python" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    # ensurepip's pip (22.3) warns about --no-binary below on every build.
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    echo "$python" >"$venv/.interpreter"
fi
vpy=$venv/bin/python
# hatchling: PyInstaller's sdist build backend, needed to read its metadata when downloading it.
"$vpy" -m pip install -q --disable-pip-version-check "pyinstaller==$pyi_version" hatchling
# The project, freshly built from this checkout. No wheel cache: a wheel built earlier by another
# compiler for the same tag (thrift has no manylinux wheel) would bring that compiler's glibc floor.
"$vpy" -m pip uninstall -q -y osquery-go-processes >/dev/null 2>&1 || true
# thrift's wheel links the host's libstdc++ (which PyInstaller would bundle with its glibc floor):
# built from source by zig's C++ compiler instead, which links its own libc++ statically.
tools=$(dirname "$cc")
CC="$cc" CXX="$tools/c++" LDSHARED="$cc -shared" LDCXXSHARED="$tools/c++ -shared" \
    "$vpy" -m pip install -q --disable-pip-version-check --no-cache-dir --no-binary thrift "$root"

# -- 3. the patched bootloader, cached by release, patch, flags and compiler --------------------
patch_file=$here/pyinstaller/bootloader-noexec.patch
# A position-independent executable with full RELRO (bind now), as Debian builds its own (gcc does
# PIE by default there, clang under zig does not); waf reads CFLAGS and LDFLAGS at configure.
bootloader_cflags="-fPIE"
bootloader_ldflags="-pie -Wl,-z,relro,-z,now"
# zlib linked in: the bootloader must not need the host's libz.so.1 (host_deps.py would name it).
bootloader_waf="--static-zlib"
bootloader_key=$( (cat "$patch_file"; echo "$bootloader_cflags $bootloader_ldflags $bootloader_waf $pyi_version"
                   cat "$cc"; "$cc" --version) | sha256sum | cut -c1-16)
src=$cache/pyinstaller-$pyi_version-$bootloader_key
platform=$("$vpy" -c 'from PyInstaller import PLATFORM; print(PLATFORM)')
if [ ! -f "$src/.complete" ]; then
    rm -rf "$src" "$build/sdist"
    "$vpy" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
        --no-build-isolation "pyinstaller==$pyi_version" -d "$build/sdist"
    mkdir -p "$src"
    tar -xzf "$build/sdist/pyinstaller-$pyi_version.tar.gz" -C "$src" --strip-components=1
    if command -v patch >/dev/null 2>&1; then
        (cd "$src" && patch -p1 --quiet <"$patch_file")
    else # patch(1) is not Essential on Debian; git apply works outside a repository too
        (cd "$src" && git apply -p1 "$patch_file")
    fi
    (cd "$src/bootloader" && CC="$cc" CFLAGS="$bootloader_cflags" LDFLAGS="$bootloader_ldflags" "$vpy" ./waf $bootloader_waf all \
        >"$build/bootloader.log" 2>&1) || {
        tail -n 80 "$build/bootloader.log" >&2
        exit 1
    }
    touch "$src/.complete"
fi
site=$("$vpy" -c 'import os, PyInstaller; print(os.path.dirname(PyInstaller.__file__))')
# .comment (compiler version strings) is the one section lintian calls unneeded; it must go before
# PyInstaller appends its archive, since objcopy on the finished bundle would drop the archive.
objcopy --remove-section=.comment "$src/PyInstaller/bootloader/$platform/run" "$build/run"
install -m 0755 "$build/run" "$site/bootloader/$platform/run"

# -- 4. the bundle -----------------------------------------------------------------------------
export_source_date_epoch  # a fixed timestamp in the archive (common.sh)
"$venv/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --distpath "$build/pyi-dist" --workpath "$build/pyi-work" \
    "$here/pyinstaller/go_processes.ext.spec"
install -m 0755 "$build/pyi-dist/go_processes.ext" "$dist/go_processes.ext.tmp"
mv -f "$dist/go_processes.ext.tmp" "$dist/go_processes.ext"
echo "built $dist/go_processes.ext ($(stat -c %s "$dist/go_processes.ext") bytes)"
