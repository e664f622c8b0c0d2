"""PyInstaller entry point of the single-file ``go_processes.ext``.

It runs exactly what the pip-installed console script runs, so the frozen build and
``pip install .`` cannot drift apart.
"""

from go_processes.extension.main import main

if __name__ == "__main__":
    main()
