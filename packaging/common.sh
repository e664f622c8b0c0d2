# Sourced by build-ext.sh, build-deb.sh and build-rpm.sh, once they have set $script (their name,
# for messages), $here (this folder) and $root (the checkout): what they all decide the same way.

# The package version, go_processes.common.__version__ (pyproject.toml reads it from there). It
# must match the top entry of debian/changelog: a release needs a changelog entry, which is also
# the RPM's %changelog.
package_version() {
    _version=$(sed -n 's/^__version__ *= *"\(.*\)"/\1/p' "$root/common/__init__.py" | head -n 1)
    _changelog=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' "$here/debian/changelog")
    if [ "$_version" != "$_changelog" ]; then
        echo "$script: go_processes.__version__ is $_version, debian/changelog says $_changelog" >&2
        exit 1
    fi
    echo "$_version"
}

# The maintainer of debian/changelog's top entry ("Name <address>").
changelog_maintainer() {
    sed -n 's/^ -- \(.*>\)  .*/\1/p' "$here/debian/changelog" | head -n 1
}

# A fixed timestamp makes rebuilds of the same tree byte-comparable: SOURCE_DATE_EPOCH as given,
# else the last commit's time; with no commit to date from (a tarball, a fresh repository) now,
# not 1970 (lintian: ancient files).
export_source_date_epoch() {
    SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || true)}
    [ -n "$SOURCE_DATE_EPOCH" ] || SOURCE_DATE_EPOCH=$(date +%s)
    export SOURCE_DATE_EPOCH
}
