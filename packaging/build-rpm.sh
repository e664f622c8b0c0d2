#!/bin/sh
# Build dist/<package>-<version>-<release>.<arch>.rpm around dist/go_processes.ext (run
# build-ext.sh first): the same files, owners, modes and extensions.load handling as the .deb.
#
# rpmbuild -bb on rpm/osquery-go-processes.spec.in with its fields filled in: the version from
# go_processes.__version__ (it must match debian/changelog's top entry, which also becomes the
# RPM %changelog), Requires from host_deps.py, and the Debian postinst/postrm as %post/%postun.
# rpmbuild writes only under $BUILD_DIR/rpm, the package goes to $DIST_DIR. Environment:
# BUILD_DIR, DIST_DIR, EXT_FILE (default $DIST_DIR/go_processes.ext), RPM_RELEASE (default 1),
# RPM_PACKAGER (default: debian/changelog's maintainer), RPMLINT (the rpmlint to run, default
# rpmlint on PATH; 0 skips it).
set -eu

script=build-rpm.sh
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/common.sh"
build=${BUILD_DIR:-$root/build/packaging}
dist=${DIST_DIR:-$root/dist}
ext=${EXT_FILE:-$dist/go_processes.ext}
[ -x "$ext" ] || { echo "build-rpm.sh: $ext missing; run packaging/build-ext.sh first" >&2; exit 1; }
ext=$(cd "$(dirname "$ext")" && pwd)/$(basename "$ext")
command -v rpmbuild >/dev/null 2>&1 || { echo "build-rpm.sh: rpmbuild not found (Debian package rpm; .ci/deps)" >&2; exit 1; }

package=osquery-go-processes
version=$(package_version)
release=${RPM_RELEASE:-1}
packager=${RPM_PACKAGER:-$(changelog_maintainer)}
arch=$(uname -m)

top=$build/rpm
rm -rf "$top"
mkdir -p "$top/tmp" "$dist"
spec=$top/$package.spec

# Requires: one line per host dependency (glibc at the bundle's floor, and any host library).
# (Not a pipe: sh would take sed's status, and an unknown host library must stop the build.)
"$build/venv/bin/python" -B "$here/host_deps.py" "$ext" rpm >"$top/deps"
sed 's/^/Requires:       /' "$top/deps" >"$top/requires"
# Scriptlet bodies and the changelog are spliced in verbatim: every % doubled, since rpmbuild
# expands macros in the whole spec.
sed 's/%/%%/g' "$here/debian/postinst" >"$top/postinst"
sed 's/%/%%/g' "$here/debian/postrm" >"$top/postrm"
# debian/changelog entries as RPM %changelog entries ("* Wed Nov 25 2026 Name <mail> - 0.1.0-1"),
# newest first as in both formats; the top entry carries this build's release.
awk -v release="$release" '
    /^[^ ]/ { match($0, /\([^)]*\)/); ver = substr($0, RSTART + 1, RLENGTH - 2); n = 0; next }
    /^  \* / { body[++n] = "- " substr($0, 5); next }
    /^    / { body[++n] = "  " substr($0, 5); next }
    /^ -- / {
        split($0, parts, "  "); who = substr(parts[1], 5); split(parts[2], d, " ")
        entries++
        if (entries > 1) print ""
        printf "* %s %s %s %s %s - %s-%s\n", substr(d[1], 1, 3), d[3], d[2], d[4], who, ver, (entries == 1 ? release : 1)
        for (i = 1; i <= n; i++) print body[i]
    }' "$here/debian/changelog" | sed 's/%/%%/g' >"$top/changelog"
awk -v requires="$top/requires" -v postinst="$top/postinst" -v postrm="$top/postrm" \
    -v changelog="$top/changelog" '
    function splice(file,   line) { while ((getline line <file) > 0) print line; close(file) }
    $0 == "@REQUIRES@" { splice(requires); next }
    $0 == "@POSTINST@" { splice(postinst); next }
    $0 == "@POSTRM@" { splice(postrm); next }
    $0 == "@CHANGELOG@" { splice(changelog); next }
    { print }' "$here/rpm/$package.spec.in" |
    sed -e "s|@VERSION@|$version|" -e "s|@RELEASE@|$release|" -e "s|@ARCH@|$arch|" >"$spec"

export_source_date_epoch
# Reproducible: build time and file times from SOURCE_DATE_EPOCH, a fixed build host name.
# gzip payload: the executable is mostly PyInstaller's already-compressed archive, and xz took
# 25 s here to make the package 0.1 % smaller (gzip: 2 s). gzip and the default SHA-256 file
# digests are what rpm 4.11 (RHEL 7, glibc 2.17) reads.
rpmbuild -bb --quiet --target "$arch" \
    --define "_topdir $top" --define "_builddir $top/BUILD" --define "_buildrootdir $top/BUILDROOT" \
    --define "_rpmdir $top/RPMS" --define "_srcrpmdir $top/SRPMS" --define "_sourcedir $top" \
    --define "_specdir $top" --define "_tmppath $top/tmp" \
    --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
    --define "_binary_payload w9.gzdio" \
    --define "use_source_date_epoch_as_buildtime 1" --define "clamp_mtime_to_source_date_epoch 1" \
    --define "_buildhost reproducible" --define "packager $packager" \
    --define "ext $ext" --define "debian $here/debian" \
    "$spec" >"$top/rpmbuild.log" 2>&1 || {
    cat "$top/rpmbuild.log" >&2
    exit 1
}
rpm_file=$package-$version-$release.$arch.rpm
mv -f "$top/RPMS/$rpm_file" "$dist/$rpm_file"
echo "built $dist/$rpm_file ($(stat -c %s "$dist/$rpm_file") bytes)"

rpmlint=${RPMLINT:-rpmlint}
if [ "$rpmlint" != 0 ] && command -v "$rpmlint" >/dev/null 2>&1; then
    # Its report only when it finds something (it prints a banner either way).
    "$rpmlint" --strict -c "$here/rpm/rpmlint.toml" "$dist/$rpm_file" >"$top/rpmlint.log" 2>&1 || {
        cat "$top/rpmlint.log" >&2
        exit 1
    }
fi
