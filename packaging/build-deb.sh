#!/bin/sh
# Build dist/<package>_<version>_<arch>.deb around dist/go_processes.ext (run build-ext.sh first).
#
# Plain dpkg-deb --root-owner-group: no debhelper, no fakeroot, no source package. The version
# comes from go_processes.__version__ and must match the top entry of debian/changelog (a release needs a
# changelog entry). Environment: BUILD_DIR, DIST_DIR, DEB_MAINTAINER, LINTIAN=0 to skip lintian.
set -eu

script=build-deb.sh
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/common.sh"
build=${BUILD_DIR:-$root/build/packaging}
dist=${DIST_DIR:-$root/dist}
ext=$dist/go_processes.ext
[ -x "$ext" ] || { echo "build-deb.sh: $ext missing; run packaging/build-ext.sh first" >&2; exit 1; }

package=osquery-go-processes
version=$(package_version)
arch=$(dpkg --print-architecture)
maintainer=${DEB_MAINTAINER:-$(changelog_maintainer)}
libdir=usr/libexec/$package
docdir=usr/share/doc/$package

stage=$build/deb/$package
rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$stage/$libdir" "$stage/$docdir" "$stage/usr/share/lintian/overrides"
# Directories 0755 whatever the umask: osqueryd refuses an extension whose directory is
# world-writable or sticky, and dpkg creates them exactly as staged.
find "$stage" -type d -exec chmod 0755 {} +

install -m 0755 "$ext" "$stage/$libdir/go_processes.ext"
# The database updater, shipped disabled: `systemctl enable --now osquery-go-processes-vulndb.timer`.
mkdir -p "$stage/usr/lib/systemd/system" && chmod 0755 "$stage/usr/lib" "$stage/usr/lib/systemd" "$stage/usr/lib/systemd/system"
install -m 0644 "$here/debian/osquery-go-processes-vulndb.service" "$here/debian/osquery-go-processes-vulndb.timer" \
    "$stage/usr/lib/systemd/system/"
install -m 0644 "$here/debian/copyright" "$stage/$docdir/copyright"
gzip -9n <"$here/debian/changelog" >"$stage/$docdir/changelog.gz"
chmod 0644 "$stage/$docdir/changelog.gz"
install -m 0644 "$here/debian/lintian-overrides" "$stage/usr/share/lintian/overrides/$package"

# What the bundle needs from the host (host_deps.py): glibc at the floor of the highest
# GLIBC_x.y symbol version in the bootloader and every library inside the bundle, and a package
# for each library an ELF file in it names (DT_NEEDED) that the bundle does not carry.
depends=$("$build/venv/bin/python" -B "$here/host_deps.py" "$ext" deb)
installed_size=$(du -k -s --apparent-size "$stage/usr" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$maintainer|" \
    -e "s|@INSTALLED_SIZE@|$installed_size|" -e "s|@DEPENDS@|$depends|" \
    "$here/debian/control.in" >"$stage/DEBIAN/control"
install -m 0755 "$here/debian/postinst" "$here/debian/postrm" "$stage/DEBIAN/"
(cd "$stage" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"

deb=$dist/${package}_${version}_${arch}.deb
export_source_date_epoch
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb.tmp" >/dev/null
mv -f "$deb.tmp" "$deb"
echo "built $deb ($(stat -c %s "$deb") bytes)"

if [ "${LINTIAN:-1}" != 0 ] && command -v lintian >/dev/null 2>&1; then
    lintian --fail-on error,warning "$deb"
fi
