"""The osquery side: register the tables with osqueryd's extension manager and serve them.

``main`` (module :mod:`.main`) is the ``go_processes.ext`` executable. Importing this package
imports nothing else, so the executable's start-up stays cheap.
"""
