"""go_processes: find every Go program on a host, as an osquery extension and a standalone command.

Layers, each a folder of the source tree installed under this package:
``buildinfo`` (executables to build info), ``procs`` (processes and gops agents), ``tables`` (one
module per osquery table), ``extension`` (the osquery side) and this package's ``main`` (the
standalone ``go-processes`` command).
"""

__version__ = "0.1.0"
