"""go_processes: find every Go program on a host, as an osquery extension and a standalone command.

Layers, each a folder of the source tree installed under this package:
``common`` (what every layer shares), ``buildinfo`` (executables to build info), ``procs``
(processes and gops agents), ``tables`` (one module per osquery table), ``extension`` (the osquery
side) and this package's ``main`` (the standalone ``go-processes`` command).
"""

# The version stays here, in the package root every import loads first (no layer imports upward
# to read it), because packaging/build-deb.sh reads this line.
__version__ = "0.1.0"
