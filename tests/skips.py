"""The only skips a CI run accepts (conftest.py turns every other skip into a failure when CI=true).

.ci/run installs every tool and package the suite needs, so in CI a skip for a missing toolchain,
library or command means a broken install and must fail the run. What CI cannot install is a
property of the machine or of the account the run uses; a skip for one of those starts its reason
with one of the prefixes below (use :func:`skip`), and `-ra` still lists it.
"""

from __future__ import annotations

from typing import NoReturn

import pytest

NEEDS_ROOT = "needs root"
NEEDS_NON_ROOT = "needs a non-root user"
SANDBOX = "the machine's sandbox forbids it"

# prefix -> why a CI run may legitimately skip it
ALLOWED_IN_CI: dict[str, str] = {
    NEEDS_ROOT: "privilege is a property of the account the run uses, not of the install: a CI run as "
                "a user cannot drop to another user, install a .deb or add users; as root it runs them",
    NEEDS_NON_ROOT: "root (CAP_DAC_OVERRIDE) reads any file whatever its mode, so a check that a "
                    "permission is refused has nothing to check as root; CI usually runs as root",
    SANDBOX: "containers may withhold CAP_SYS_ADMIN (no mount namespaces) or hide kernel threads in "
             "their own pid namespace; no package installs either",
}


def skip(prefix: str, detail: str) -> NoReturn:
    """Skip for a reason CI tolerates: ``prefix`` (one of ALLOWED_IN_CI) and the specifics."""
    __tracebackhide__ = True  # report the calling test's line, not this one
    if prefix not in ALLOWED_IN_CI:
        raise ValueError(f"not an environment skip CI accepts: {prefix!r}")
    pytest.skip(f"{prefix}: {detail}")


def allowed_in_ci(reason: str) -> bool:
    """Does a skip reason start with one of the accepted prefixes?"""
    return reason.startswith(tuple(f"{p}: " for p in ALLOWED_IN_CI))
