# make run   - the main job: `SELECT * FROM go_processes` in osqueryi when it is installed, else
#              the standalone listing (same rows, gops-like table)
# make test  - dependencies (Go toolchains, Python packages), lint, types, then the test suite
# make dist  - dist/go_processes.ext (one self-contained executable, no Python needed on the host),
#              dist/osquery-go-processes_<version>_<arch>.deb and
#              dist/osquery-go-processes-<version>-1.<arch>.rpm; see README "Deploying"
# make check - lint and tests only, for a machine that already ran `make deps`
# make lint  - ruff, then mypy over the package as it installs (.ci/typecheck)
# make ci    - what CI runs on a fresh machine: dependencies, artefacts, lint, tests
#
# Everything runs in a project virtualenv ($(VENV), default .venv), never in the system Python:
# a distribution's python3 is "externally managed" (PEP 668) and refuses pip installs. PYTHON
# only chooses the interpreter the virtualenv is made from (any Python >= 3.10). The checkout is
# installed editable, so an edited file is what the next test run imports.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run venv install dist ext deb rpm test check pytest lint deps ci readme clean

run: install
	@ext="$(VENV)/bin/go_processes.ext"; \
	if command -v osqueryi >/dev/null 2>&1; then \
	    osqueryi --extension "$$ext" --extensions_require=go_processes --extensions_timeout=10 \
	        'SELECT * FROM go_processes'; \
	else \
	    echo "osqueryi not found: the standalone listing (same rows as SELECT * FROM go_processes)" >&2; \
	    $(PY) -m go_processes; \
	fi

# The virtualenv, made once (and again when it is missing or broken).
venv: $(VENV)/.made

$(VENV)/.made:
	@PYTHON=$(PYTHON) VENV=$(VENV) sh .ci/venv
	@touch $@

install: $(VENV)/.installed

# The editable install maps each layer folder to its package when it is made: pyproject.toml's
# package list changing (a new layer) means installing again, which this stamp does by itself.
# setuptools prints an "Editable installation" notice on every editable install through a
# meta-path finder (how package-dir maps the layers); EDITABLE_QUIET silences that one warning.
EDITABLE_QUIET := PYTHONWARNINGS="ignore:Editable installation"
$(VENV)/.installed: pyproject.toml $(VENV)/.made
	$(EDITABLE_QUIET) $(PY) -m pip install -q --disable-pip-version-check -e .
	@touch $@

dist: ext deb rpm

# `.ci/deps dist` installs what the artefacts need beyond a base Debian system (the tools that
# unpack and patch Debian's sources for the portable interpreter, rpmbuild) when it is missing.
ext: venv
	@.ci/deps dist
	PYTHON=$(PY) sh packaging/build-ext.sh

deb: ext
	sh packaging/build-deb.sh

# rpmlint (test extras, `make deps`) checks the package when the virtualenv has it.
rpm: ext
	RPMLINT=$(VENV)/bin/rpmlint sh packaging/build-rpm.sh

test: deps check

check: lint pytest

pytest: install
	$(PY) -m pytest -q

lint: install
	$(PY) -m ruff check . && PYTHON=$(PY) .ci/typecheck

deps: venv
	PYTHON=$(PY) .ci/deps
	@touch $(VENV)/.installed

ci: deps dist check

readme: install
	$(PY) .ci/readme

clean:
	rm -rf build/packaging build/packaging-test dist
