"""gops's own rules, once for every platform: where its agent writes the pidfile, and what a
pidfile holds. The platform modules only read files and sockets."""

from __future__ import annotations

import ntpath
import posixpath
from collections.abc import Mapping

WANTED = ("GOPS_CONFIG_DIR", "XDG_CONFIG_HOME", "HOME", "APPDATA")  # the variables config_dir reads
PIDFILE_MAX = 16  # a pidfile holds a port: five digits and maybe a newline


def config_dir(env: Mapping[str, str], platform: str) -> str:
    """The gops config dir a process with environment ``env`` on ``platform`` (``sys.platform``)
    uses, as gops's agent computes it (internal.ConfigDir): $GOPS_CONFIG_DIR, else
    os.UserConfigDir()/gops (Linux and BSD: $XDG_CONFIG_HOME, else $HOME/.config; macOS:
    ~/Library/Application Support; Windows: %AppData%); "" when the environment does not say, and
    the caller falls back to the user's home from the user database."""
    if env.get("GOPS_CONFIG_DIR"):
        return env["GOPS_CONFIG_DIR"]
    if platform == "win32":
        return ntpath.join(env["APPDATA"], "gops") if env.get("APPDATA") else ""
    if platform == "darwin":
        home = env.get("HOME", "")
        return posixpath.join(home, "Library", "Application Support", "gops") if home else ""
    if env.get("XDG_CONFIG_HOME"):
        return posixpath.join(env["XDG_CONFIG_HOME"], "gops")
    if env.get("HOME"):
        return posixpath.join(env["HOME"], ".config", "gops")
    return ""


def home_config_dir(home: str) -> str:
    """The fallback when the environment names no directory: the home's .config/gops."""
    return posixpath.join(home, ".config", "gops") if home else ""


def port(content: bytes) -> int | None:
    """The TCP port a pidfile names, or None when it holds anything else."""
    text = content.strip()
    if not text.isdigit() or len(text) > 5:
        return None
    value = int(text)
    return value if 0 < value < 65536 else None
