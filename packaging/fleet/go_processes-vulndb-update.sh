#!/bin/sh
# Fleet script: install or refresh the Go vulnerability database that the go_processes extension
# reads (go_vulnerabilities, go_vulndb). Add it under Controls > Scripts, run it on a schedule
# with a policy automation on "Go vulnerability database is present and fresh", or once with
#   fleetctl run-script --script-path go_processes-vulndb-update.sh --host HOST
# Runs as root (as Fleet runs scripts). The extension file is the updater: the Debian package's
# path first, then the copy fleetd keeps under /opt/orbit. Set SOURCE to a local vulndb.zip for
# hosts without access to vuln.go.dev: it is refused unless it and every directory above it are
# owned by root and not writable by group or others (whoever could write it would choose what is
# reported), e.g. /var/cache/osquery-go-processes/vulndb.zip installed with `install -m 0644`.
set -eu
for ext in /usr/libexec/osquery-go-processes/go_processes.ext \
           $(find /opt/orbit/bin/extensions -name go_processes.ext -type f 2>/dev/null | head -n 1); do
    if [ -x "$ext" ]; then
        umask 022
        exec "$ext" vulndb update ${SOURCE:+--source "$SOURCE"}
    fi
done
echo "go_processes.ext not found (install the osquery-go-processes package or the Fleet extension)" >&2
exit 1
