"""known_hosts read the way OpenSSH reads it: `@revoked` keys are refused, `@cert-authority` lines are skipped
with a note (host certificates are not verified here), a malformed line is skipped with a note.

paramiko's own loader raised on either marker, so one such line broke every connection, even to hosts with a
valid entry. Only public paramiko API is used (`HostKeyEntry.from_line`, `HostKeys.add`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .._deps import require


def load(host_keys, path: Path, notify: Callable[[str], None]) -> set[tuple[str, str]]:
    """Add `path`'s entries to paramiko `host_keys`, except revoked keys; return the revoked keys as (key type,
    base64) pairs. A revoked key then reaches the missing-key policy, which refuses it even with --trust-new-host."""
    paramiko = require("paramiko", "deploy")
    revoked: set[tuple[str, str]] = set()
    entries = []
    try:
        text = path.read_text(errors="replace")
    except OSError as ex:
        notify(f"note: {path}: cannot read ({ex.strerror}); no known hosts from it")
        return revoked
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            marker, _, rest = line.partition(" ")
            fields = rest.split()
            if marker == "@revoked" and len(fields) >= 3:
                revoked.add((fields[1], fields[2]))
            elif marker == "@cert-authority":
                notify(f"note: {path} line {lineno}: @cert-authority skipped (host certificates are not verified)")
            else:
                notify(f"note: {path} line {lineno}: unknown marker {marker[:20]!r} skipped")
            continue
        try:
            entry = paramiko.hostkeys.HostKeyEntry.from_line(line, lineno)
        except Exception as ex:  # paramiko raises several types (InvalidHostKey, binascii.Error, SSHException)
            notify(f"note: {path} line {lineno}: not a host key line ({type(ex).__name__}); skipped")
            continue
        if entry is not None and entry.key is not None:
            entries.append(entry)
    for entry in entries:
        if (entry.key.get_name(), entry.key.get_base64()) in revoked:
            continue
        for name in entry.hostnames:
            host_keys.add(name, entry.key.get_name(), entry.key)
    return revoked
