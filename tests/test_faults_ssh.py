"""issue 12, the SSH side: known_hosts markers (@revoked honoured, @cert-authority skipped with a note) against a
real sshd, and a peer that sends junk or nothing instead of an SSH banner (a real TCP server on loopback)."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import sys
import threading

import pytest
from conftest import invoke


def other_key(tmp_path, name: str) -> tuple[str, str]:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)], check=True)
    kind, b64 = (tmp_path / f"{name}.pub").read_text().split()[:2]
    return kind, b64


def status(sshd, *extra):
    return invoke("remote", "status", "--host", sshd.spec, "--timeout", "10", *extra)


def test_known_hosts_with_revoked_and_cert_authority_lines_still_connects(tmp_path, ssh_home, sshd):
    """Before: paramiko's loader raised on either marker, so every connection failed with a traceback."""
    ca, stale = other_key(tmp_path, "ca"), other_key(tmp_path, "stale")
    (ssh_home / ".ssh" / "known_hosts").write_text(
        f"@cert-authority *.example.com {ca[0]} {ca[1]}\n"
        f"@revoked * {stale[0]} {stale[1]}\n"
        "garbage line\n" + sshd.known_hosts_line()
    )
    r = status(sshd)
    assert r.exit_code == 0, r.output
    assert "current   none" in r.stdout
    assert "line 1: @cert-authority skipped (host certificates are not verified)" in r.stderr
    assert "Traceback" not in r.output


def test_revoked_host_key_is_refused_even_when_also_listed_and_with_trust_new_host(ssh_home, sshd):
    line = sshd.known_hosts_line()
    _host, kind, b64 = line.split()[:3]
    (ssh_home / ".ssh" / "known_hosts").write_text(f"@revoked * {kind} {b64}\n" + line)
    for extra in ((), ("--trust-new-host",)):
        r = status(sshd, *extra)
        assert r.exit_code == 1, r.output
        last = r.stderr.strip().splitlines()[-1]
        assert last.endswith("a key marked @revoked in known_hosts: refusing to connect"), last
        assert f"offers {kind} SHA256:" in last
    assert (ssh_home / ".ssh" / "known_hosts").read_text() == f"@revoked * {kind} {b64}\n" + line  # nothing added


class FakePeer:
    """A TCP server on 127.0.0.1 that answers each connection with `reply` (then closes), or with nothing."""

    def __init__(self, reply: bytes | None) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            if self.reply is not None:
                c.sendall(self.reply)
                c.close()

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.mark.slow  # a subprocess per case, ~1-2 s each
@pytest.mark.parametrize(
    "reply", [b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"\x00\xff" * 50 + b"\r\n", None], ids=["junk", "silent"]
)
def test_junk_or_no_ssh_banner_is_one_clean_line(tmp_path, reply):
    """In a subprocess, as a user runs it: paramiko's thread logged a traceback to stderr before the error, and a
    silent peer was reported as 'No existing session'."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text("")
    peer = FakePeer(reply)
    try:
        env = dict(os.environ, HOME=str(home))
        env.pop("SSH_AUTH_SOCK", None)
        p = subprocess.run(
            [sys.executable, "-m", "edgelstm", "remote", "status", "--host", f"127.0.0.1:{peer.port}"]
            + ["--timeout", "1"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    finally:
        peer.close()
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == [
        f"Error: cannot connect to {getpass.getuser()}@127.0.0.1:{peer.port}: no SSH banner from "
        "the host (not an SSH server there, or no answer within the timeout)"
    ]


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["deploy", "m.bin", "--host", "127.0.0.1:99999"], "port 99999 is not in 1-65535"),
        (["remote", "status", "--host", "127.0.0.1:0"], "port 0 is not in 1-65535"),
        (["remote", "status", "--host", "h", "--timeout", "-1"], "Invalid value for '--timeout'"),
        (["remote", "status", "--host", "h", "--timeout", "0"], "Invalid value for '--timeout'"),
    ],
)
def test_host_and_timeout_out_of_range(tmp_path, args, fragment):
    (tmp_path / "m.bin").write_bytes(b"x")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        r = invoke(*args)
    finally:
        os.chdir(cwd)
    assert r.exit_code == 2, r.output
    assert fragment in r.stderr and "Traceback" not in r.output
