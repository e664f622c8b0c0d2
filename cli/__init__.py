"""go_processes: find every Go program on a host, as an osquery extension and a standalone command.

Layers, each a folder of the source tree installed under this package:
``common`` (what every layer shares), ``buildinfo`` (executables to build info), ``procs``
(processes and gops agents), ``tables`` (one module per osquery table), ``extension`` (the osquery
side) and this package's ``main`` (the standalone ``go-processes`` command).
"""

# The version lives in common/ (below every layer); re-exported as the distribution's attribute.
from .common import __version__ as __version__
