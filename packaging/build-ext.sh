#!/bin/sh
# Build dist/go_processes.ext: one self-contained Linux executable (PyInstaller one-file) that
# needs no Python on the host and still starts where /tmp is mounted noexec.
#
# Steps (all under $BUILD_DIR, default build/packaging; reruns reuse what is there):
#   1. a private virtualenv with the pinned PyInstaller and this project (not the caller's
#      Python: the bundle must contain exactly what pyproject.toml declares);
#   2. PyInstaller's bootloader rebuilt from the same release's sdist with
#      pyinstaller/bootloader-noexec.patch (stock one-file extracts its shared libraries to
#      $TMPDIR or /tmp and dies there when /tmp is noexec; osqueryd gives no TMPDIR);
#   3. PyInstaller run on pyinstaller/go_processes.ext.spec.
# Environment: PYTHON (interpreter to bundle, default python3), BUILD_DIR, DIST_DIR.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${BUILD_DIR:-$root/build/packaging}
dist=${DIST_DIR:-$root/dist}
python=${PYTHON:-python3}
# The bootloader patch is written against this release; bump both together.
pyi_version=6.22.3

mkdir -p "$build" "$dist"
venv=$build/venv
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
vpy=$venv/bin/python
# hatchling: PyInstaller's sdist build backend, needed to read its metadata when downloading it.
"$vpy" -m pip install -q --disable-pip-version-check "pyinstaller==$pyi_version" hatchling

# -- 1. the project, freshly built from this checkout ------------------------------------------
"$vpy" -m pip uninstall -q -y osquery-go-processes >/dev/null 2>&1 || true
"$vpy" -m pip install -q --disable-pip-version-check "$root"

# -- 2. the patched bootloader ---------------------------------------------------------------
patch_file=$here/pyinstaller/bootloader-noexec.patch
# Full RELRO (bind now) as Debian builds its own executables; waf reads LDFLAGS at configure.
bootloader_ldflags="-Wl,-z,relro,-z,now"
patch_sum=$( (cat "$patch_file"; echo "$bootloader_ldflags") | sha256sum | cut -c1-16)
src=$build/pyinstaller-$pyi_version
stamp=$src/.bootloader-$patch_sum
platform=$("$vpy" -c 'from PyInstaller import PLATFORM; print(PLATFORM)')
if [ ! -f "$stamp" ]; then
    "$vpy" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
        --no-build-isolation "pyinstaller==$pyi_version" -d "$build/sdist"
    rm -rf "$src"
    mkdir -p "$src"
    tar -xzf "$build/sdist/pyinstaller-$pyi_version.tar.gz" -C "$src" --strip-components=1
    if command -v patch >/dev/null 2>&1; then
        (cd "$src" && patch -p1 --quiet <"$patch_file")
    else # patch(1) is not Essential on Debian; git apply works outside a repository too
        (cd "$src" && git apply -p1 "$patch_file")
    fi
    (cd "$src/bootloader" && LDFLAGS="$bootloader_ldflags" "$vpy" ./waf all >"$build/bootloader.log" 2>&1) || {
        cat "$build/bootloader.log" >&2
        exit 1
    }
    touch "$stamp"
fi
site=$("$vpy" -c 'import os, PyInstaller; print(os.path.dirname(PyInstaller.__file__))')
# .comment (compiler version strings) is the one section lintian calls unneeded; it must go before
# PyInstaller appends its archive, since objcopy on the finished bundle would drop the archive.
objcopy --remove-section=.comment "$src/PyInstaller/bootloader/$platform/run" "$build/run"
install -m 0755 "$build/run" "$site/bootloader/$platform/run"

# -- 3. the bundle -----------------------------------------------------------------------------
# A fixed timestamp in the archive makes rebuilds of the same tree byte-comparable.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || true)}
# No commit to date from (a tarball, a fresh repository): now, not 1970 (lintian: ancient files).
[ -n "$SOURCE_DATE_EPOCH" ] || SOURCE_DATE_EPOCH=$(date +%s)
export SOURCE_DATE_EPOCH
"$venv/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --distpath "$build/pyi-dist" --workpath "$build/pyi-work" \
    "$here/pyinstaller/go_processes.ext.spec"
install -m 0755 "$build/pyi-dist/go_processes.ext" "$dist/go_processes.ext.tmp"
mv -f "$dist/go_processes.ext.tmp" "$dist/go_processes.ext"
echo "built $dist/go_processes.ext ($(stat -c %s "$dist/go_processes.ext") bytes)"
