"""The update's HTTPS trust comes from the host's own CA bundle, wherever its distribution keeps it:
the single-file .ext carries an OpenSSL built elsewhere, which knows none of those places itself.
(tests/test_portability.py checks it end to end inside a Debian 11 userland.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import skips
from go_processes.vulndb._update import CA_BUNDLES, host_ca_bundle


def _bundle(path: Path, mode: int = 0o644) -> str:
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    path.chmod(mode)
    return str(path)


@pytest.fixture(autouse=True)
def _no_openssl_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


def test_every_distribution_family_is_looked_up() -> None:
    """Debian/Ubuntu, RHEL/Amazon Linux, SUSE, Fedora's extracted bundle, Alpine and others."""
    assert {"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
            "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem"} <= set(CA_BUNDLES)


def test_the_first_present_bundle_is_taken(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        skips.skip(skips.NEEDS_ROOT, "the bundle must be root's; files made here are the runner's")
    first, second = tmp_path / "first.pem", tmp_path / "second.pem"
    assert host_ca_bundle((str(tmp_path / "absent.pem"), _bundle(second))) == str(second)
    assert host_ca_bundle((_bundle(first), str(second))) == str(first)
    assert host_ca_bundle((str(tmp_path / "absent.pem"),)) is None  # OpenSSL's own default then


def test_a_bundle_others_can_write_or_own_is_passed_over(tmp_path: Path) -> None:
    """The bundle decides whom root trusts for the database: one anybody could have edited is not used."""
    if os.geteuid() != 0:
        skips.skip(skips.NEEDS_ROOT, "chown to another user")
    writable = _bundle(tmp_path / "writable.pem", 0o666)
    owned = _bundle(tmp_path / "owned.pem")
    os.chown(owned, 65534, 65534)
    good = _bundle(tmp_path / "good.pem")
    assert host_ca_bundle((writable, owned, good)) == good
    assert host_ca_bundle((str(tmp_path),)) is None  # a directory is no bundle


def test_openssl_environment_override_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SSL_CERT_FILE / SSL_CERT_DIR are OpenSSL's documented override: the bundle search steps aside."""
    if os.geteuid() != 0:
        skips.skip(skips.NEEDS_ROOT, "the bundle must be root's")
    good = _bundle(tmp_path / "good.pem")
    monkeypatch.setenv("SSL_CERT_FILE", good)
    assert host_ca_bundle((good,)) is None
