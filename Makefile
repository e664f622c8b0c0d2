# make dist  - dist/go_processes.ext (one self-contained executable, no Python needed on the host)
#              and dist/osquery-go-processes_<version>_<arch>.deb; see packaging/README.md
# make run   - the main job: install, then `SELECT * FROM go_processes` in osqueryi when it is
#              installed, else the standalone listing (same rows, gops-like table)
# make test  - dependencies (Go toolchains, Python packages), lint, types, then the test suite
#              (tests/test_packaging.py builds dist/ itself when it is missing)
# make check - lint and tests only, for a machine that already ran `make deps`
# make lint  - ruff, then mypy over the package as it installs (.ci/typecheck)
# make ci    - what CI runs on a fresh machine: dependencies, artefacts, lint, tests
PYTHON ?= python3

.PHONY: run install dist ext deb test check pytest lint deps ci readme clean

run: install
	@ext="$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/go_processes.ext"; \
	if command -v osqueryi >/dev/null 2>&1; then \
	    osqueryi --extension "$$ext" --extensions_require=go_processes --extensions_timeout=10 \
	        'SELECT * FROM go_processes'; \
	else \
	    echo "osqueryi not found: the standalone listing (same rows as SELECT * FROM go_processes)" >&2; \
	    $(PYTHON) -m go_processes; \
	fi

install:
	$(PYTHON) -m pip install -q --disable-pip-version-check .

dist: ext deb

ext:
	PYTHON=$(PYTHON) sh packaging/build-ext.sh

deb: ext
	sh packaging/build-deb.sh

test: deps check

check: lint pytest

pytest:
	$(PYTHON) -m pytest -q

lint:
	$(PYTHON) -m ruff check . && .ci/typecheck

deps:
	.ci/deps

ci: deps dist check

readme:
	$(PYTHON) .ci/readme

clean:
	rm -rf build/packaging build/packaging-test dist
