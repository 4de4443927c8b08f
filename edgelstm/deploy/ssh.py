"""SSH transport (paramiko): the user's ~/.ssh/config, agent and keys; strict known_hosts; timeouts everywhere.

Every blocking read has a timeout and the transport sends keepalives, so a dead link ends in an error instead
of a hang. Passwords are never asked for or accepted; nothing secret is logged.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import re
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .._deps import require
from ..errors import DeployError, HostKeyError, InputError

LINK_ERRORS = (OSError, EOFError, socket.timeout)
NO_BANNER = "no SSH banner from the host (not an SSH server there, or no answer within the timeout)"


def link_errors() -> tuple[type[BaseException], ...]:
    """What a broken or refusing SSH link raises: paramiko's own SSHException family, and the socket's."""
    return (require("paramiko", "deploy").SSHException, *LINK_ERRORS)


@dataclass(frozen=True)
class HostSpec:
    """`[user@]host[:port]` as the user typed it; `host` may be an alias from ~/.ssh/config."""

    host: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> HostSpec:
        m = re.fullmatch(r"(?:([^@\s]+)@)?([^@:\s]+)(?::(\d+))?", text.strip())
        if not m:
            raise InputError(f"bad host '{text}': expected [user@]host[:port]")
        port = int(m.group(3)) if m.group(3) else None
        if port is not None and not 1 <= port <= 65535:
            raise InputError(f"bad host '{text}': port {port} is not in 1-65535")
        return cls(host=m.group(2), user=m.group(1), port=port)

    def __str__(self) -> str:
        return (f"{self.user}@" if self.user else "") + self.host + (f":{self.port}" if self.port else "")


@dataclass
class ConnectOptions:
    """How to connect; `timeout` bounds every connect and every read (seconds without a byte)."""

    trust_new_host: bool = False
    timeout: float = 15.0
    keepalive: int = 5
    notify: Callable[[str], None] = field(default=lambda msg: None)


def fingerprint(key) -> str:
    """OpenSSH-style SHA256 fingerprint, as `ssh-keygen -l` prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def _ssh_config(host: str) -> dict:
    paramiko = require("paramiko", "deploy")
    path = Path("~/.ssh/config").expanduser()
    if not path.is_file():
        return {"hostname": host}
    return paramiko.SSHConfig.from_path(str(path)).lookup(host)


class Connection:
    """One SSH connection to one device: run commands, stream their output, upload files."""

    def __init__(self, spec: HostSpec, opts: ConnectOptions | None = None) -> None:
        paramiko = require("paramiko", "deploy")
        self.spec = spec
        self.opts = opts or ConnectOptions()
        cfg = _ssh_config(spec.host)
        self.hostname = cfg.get("hostname", spec.host)
        self.port = spec.port or int(cfg.get("port", 22))
        self.user = spec.user or cfg.get("user") or getpass.getuser()
        known = cfg.get("userknownhostsfile", "~/.ssh/known_hosts").split()[0]
        self.known_hosts = Path(known).expanduser()
        client = paramiko.SSHClient()
        from .knownhosts import load as load_known_hosts

        self.revoked: set[tuple[str, str]] = set()
        for path in (Path("/etc/ssh/ssh_known_hosts"), self.known_hosts):
            if path.is_file():
                self.revoked |= load_known_hosts(client.get_host_keys(), path, self.opts.notify)
        quiet_paramiko_logs()
        client.set_missing_host_key_policy(_Policy(self))
        sock = paramiko.ProxyCommand(cfg["proxycommand"]) if cfg.get("proxycommand") else None
        keys = [str(Path(k).expanduser()) for k in cfg.get("identityfile", []) if Path(k).expanduser().is_file()]
        where = f"{self.user}@{self.hostname}:{self.port}"
        try:
            client.connect(
                self.hostname,
                port=self.port,
                username=self.user,
                key_filename=keys or None,
                sock=sock,
                timeout=self.opts.timeout,
                banner_timeout=self.opts.timeout,
                auth_timeout=self.opts.timeout,
                channel_timeout=self.opts.timeout,
                allow_agent=True,
                look_for_keys=True,
            )
        except HostKeyError:
            client.close()
            raise
        except paramiko.BadHostKeyException as ex:
            client.close()
            raise HostKeyError(
                f"host key of {self.hostname}:{self.port} ({ex.key.get_name()} {fingerprint(ex.key)}) does not match "
                f"{self.known_hosts}: refusing to connect (if the device was reinstalled, remove its old line)"
            ) from None
        except paramiko.AuthenticationException:
            client.close()
            raise DeployError(
                f"{where}: authentication failed (agent and keys tried; passwords are never used)"
            ) from None
        except (paramiko.SSHException, *LINK_ERRORS) as ex:
            t = client.get_transport()
            # paramiko says "No existing session" when the transport died before the peer sent an SSH banner
            no_banner = isinstance(ex, paramiko.SSHException) and t is not None and not t.remote_version
            client.close()
            raise DeployError(f"cannot connect to {where}: {NO_BANNER if no_banner else _reason(ex)}") from None
        client.get_transport().set_keepalive(self.opts.keepalive)
        self.client = client
        self.link_dead = False

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _session(self, command: str, timeout: float | None):
        started = time.monotonic()
        try:
            # exec_command waits for the server's reply with no timeout of its own: a link that dies here would
            # hang it for good (seen in the deploy torture test), so the watchdog guards it too
            with self._watchdog(lambda: started):
                chan = self.client.get_transport().open_session(timeout=self.opts.timeout)
                chan.settimeout(timeout or self.opts.timeout)
                chan.exec_command(command)
        except link_errors() as ex:
            raise self.lost(ex, "starting a command") from None
        return chan

    def run(self, command: str, stdin: bytes | None = None, timeout: float | None = None) -> tuple[int, str, str]:
        """Run `command` (a shell line) on the device; return (exit code, stdout, stderr)."""
        chan = self._session(command, timeout)
        out, err = bytearray(), bytearray()
        try:
            if stdin is not None:
                started = time.monotonic()
                with self._watchdog(lambda: started):
                    chan.sendall(stdin)
                chan.shutdown_write()
            # a link that dies while the command runs (a long health check) ends in an error, not in the timeout
            moved = [time.monotonic()]
            with self._watchdog(lambda: moved[0]):
                while True:
                    data = chan.recv(65536)
                    if not data:
                        break
                    out += data
                    moved[0] = time.monotonic()
                while True:
                    data = chan.recv_stderr(65536)
                    if not data:
                        break
                    err += data
                rc = chan.recv_exit_status()
            if self.link_dead:
                raise TimeoutError("keepalive not answered")
        except link_errors() as ex:
            raise self.lost(ex, "waiting for a command") from None
        finally:
            _close(chan)
        return rc, out.decode(errors="replace"), err.decode(errors="replace")

    def stream(self, command: str, on_line: Callable[[str], None]) -> int:
        """Run `command`, passing each stdout line to `on_line` as it arrives; Ctrl-C stops the remote process.

        The command runs under `sh -c 'echo $$; exec …'`, so its PID is known and a KeyboardInterrupt (or any
        error in `on_line`) sends it SIGINT, then SIGTERM, through a second channel. A quiet command is fine;
        a quiet link is probed, and one that does not answer within the timeout ends the stream with an error.
        """
        wrapped = "sh -c " + shlex.quote("echo $$; exec " + command)
        chan = self._session(wrapped, 1.0)
        pid, buf = None, b""
        last = time.monotonic()
        try:
            while True:
                try:
                    data = chan.recv(65536)
                except TimeoutError:
                    if time.monotonic() - last > self.opts.keepalive:
                        self._probe_link()
                        last = time.monotonic()
                    continue
                last = time.monotonic()
                if not data:
                    break
                buf += data
                *lines, buf = buf.split(b"\n")
                for raw in lines:
                    line = raw.decode(errors="replace")
                    if pid is None:
                        pid = int(line)
                        continue
                    on_line(line)
            if buf:
                on_line(buf.decode(errors="replace"))
            ended = time.monotonic()
            with self._watchdog(lambda: ended):  # recv_exit_status has no timeout either
                rc = chan.recv_exit_status()
            if self.link_dead:
                raise TimeoutError("keepalive not answered")
            return rc
        except BaseException as ex:
            if isinstance(ex, (*LINK_ERRORS, DeployError)):
                raise self.lost(ex, "streaming") from None
            if pid is not None:
                self.run(f"kill -INT {pid} 2>/dev/null; sleep 1; kill -TERM {pid} 2>/dev/null; true")
            raise
        finally:
            _close(chan)

    def _probe_link(self) -> None:
        """Ask the server for a reply; no reply within the timeout means the link is dead."""
        transport = self.client.get_transport()
        done, answered = threading.Event(), []

        def ask() -> None:
            try:
                transport.global_request("keepalive@openssh.com", wait=True)  # None when refused: still an answer
                answered.append(transport.is_active())
            except link_errors():  # the link broke while asking: same verdict as no answer
                pass
            finally:
                done.set()

        threading.Thread(target=ask, daemon=True).start()
        if not done.wait(self.opts.timeout) or answered != [True]:
            self.link_dead = True
            transport.close()
            raise TimeoutError("keepalive not answered")

    def upload(self, local: Path, remote: str, progress: Callable[[int, int], None] | None = None) -> None:
        """SFTP `local` to the absolute path `remote`; `progress(sent, total)` after each chunk."""
        moved = time.monotonic()

        def chunk_sent(sent: int, total: int) -> None:
            nonlocal moved
            moved = time.monotonic()
            if progress:
                progress(sent, total)

        try:
            with open(local, "rb") as f, self._watchdog(lambda: moved):  # opening the subsystem waits as exec does
                sftp = self.client.open_sftp()
                sftp.get_channel().settimeout(self.opts.timeout)
                sftp.putfo(f, remote, file_size=local.stat().st_size, callback=chunk_sent, confirm=True)
                sftp.close()
        except link_errors() as ex:
            raise self.lost(ex, "uploading") from None

    @contextmanager
    def _watchdog(self, moved: Callable[[], float]) -> Iterator[None]:
        """Probe the link whenever `moved()` (when data last moved) is `keepalive` seconds old; a dead link closes
        the transport. Channel timeouts cannot catch this: a write into a dead TCP link blocks inside paramiko,
        which retries a full socket until the kernel gives up (tcp_retries2, ~15 minutes), and only closing the
        transport frees it."""
        stop = threading.Event()

        def watch() -> None:
            probed = time.monotonic()
            while not stop.wait(0.2):
                if time.monotonic() - max(moved(), probed) > self.opts.keepalive:
                    try:
                        self._probe_link()
                    except TimeoutError:
                        return
                    probed = time.monotonic()

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def lost(self, ex: BaseException, doing: str) -> DeployError:
        reason = f"no answer to a keepalive within {self.opts.timeout:g} s" if self.link_dead else _reason(ex)
        return DeployError(f"connection lost while {doing} ({reason})")


def _close(chan) -> None:
    """Closing a channel sends a message, and on a link that just died paramiko raises a bare EOFError there: it
    must neither replace the error already on its way (seen in the deploy torture test) nor fail a finished
    command."""
    try:
        chan.close()
    except link_errors():
        pass


def quiet_paramiko_logs() -> None:
    """paramiko's transport thread logs a traceback (through logging's last-resort handler, to stderr) when the
    peer sends junk instead of an SSH banner; the error reaches the user once, as our one line."""
    import logging

    log = logging.getLogger("paramiko")
    if not log.handlers:
        log.addHandler(logging.NullHandler())


def _reason(ex: BaseException) -> str:
    if "protocol banner" in str(ex):
        return NO_BANNER
    if isinstance(ex, socket.timeout) or "timed out" in str(ex).lower():
        return "no answer within the timeout"
    text = str(ex).strip() or type(ex).__name__
    return text.splitlines()[0]


class _Policy:
    """Unknown host key: refuse, or with --trust-new-host accept, save to known_hosts and say which key."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def missing_host_key(self, client, hostname: str, key) -> None:
        fp = fingerprint(key)
        known = self.conn.known_hosts
        if (key.get_name(), key.get_base64()) in self.conn.revoked:
            raise HostKeyError(
                f"{hostname} offers {key.get_name()} {fp}, a key marked @revoked in known_hosts: refusing to connect"
            )
        if not self.conn.opts.trust_new_host:
            raise HostKeyError(
                f"{hostname} is not in {known} (it offers {key.get_name()} {fp}); check that fingerprint on the "
                "device, then rerun with --trust-new-host"
            )
        known.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(known, "a") as f:
            f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.conn.opts.notify(f"trusted new host key of {hostname}: {key.get_name()} {fp} (saved to {known})")


def quote(*args: str) -> str:
    return " ".join(shlex.quote(str(a)) for a in args)
