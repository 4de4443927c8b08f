"""Real OpenSSH servers for the deploy tests: one on 127.0.0.1, one inside its own network namespace."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"


@dataclass
class SshServer:
    """A running sshd; `home` is the login's HOME (set through authorized_keys), a fresh device each time."""

    address: str
    port: int
    home: Path
    host_key_pub: str
    proc: subprocess.Popen

    @property
    def spec(self) -> str:
        return f"root@{self.address}:{self.port}"

    def known_hosts_line(self) -> str:
        host = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        kind, b64 = self.host_key_pub.split()[:2]
        return f"{host} {kind} {b64}\n"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def start_sshd(workdir: Path, client_pub: Path, address: str, port: int, netns: str | None = None) -> SshServer:
    """Start `sshd -D -e` with its own host key and authorized_keys; wait until it answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    keygen(workdir / "host_key")
    home = workdir / "home"
    home.mkdir()
    # environment="HOME=…" gives every test device its own home (PermitUserEnvironment), not root's.
    (workdir / "authorized_keys").write_text(f'environment="HOME={home}" {client_pub.read_text()}')
    config = workdir / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress {address}\nHostKey {workdir}/host_key\n"
        f"AuthorizedKeysFile {workdir}/authorized_keys\nPidFile none\nUsePAM no\nStrictModes no\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        "PermitUserEnvironment yes\nSubsystem sftp internal-sftp\n"
    )
    cmd = [SSHD, "-D", "-e", "-f", str(config)]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    with open(workdir / "sshd.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    server = SshServer(address, port, home, (workdir / "host_key.pub").read_text(), proc)
    deadline = time.monotonic() + 10
    last = "no connection tried"
    while True:
        # its own "listening" line first: a banner alone could be another test's sshd (pytest-xdist) on this port
        if f"Server listening on {address} port {port}.".encode() in (workdir / "sshd.log").read_bytes():
            try:
                with socket.create_connection((address, port), timeout=1) as s:
                    if s.recv(4).startswith(b"SSH-"):
                        return server
            except OSError as ex:
                last = repr(ex)
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            route = subprocess.run(["ip", "route", "get", address], capture_output=True, text=True)
            raise RuntimeError(
                f"sshd did not start: {(workdir / 'sshd.log').read_text()}; last connect: {last}; "
                f"route: {(route.stdout + route.stderr).strip()}"
            )
        time.sleep(0.1)


@dataclass
class Netns:
    """A namespace joined to this host by a veth pair: host end `veth_host` (`host_ip`), device end `device_ip`."""

    name: str
    veth_host: str
    host_ip: str
    device_ip: str

    def link(self, up: bool) -> None:
        subprocess.run(["ip", "link", "set", self.veth_host, "up" if up else "down"], check=True)

    def shape(self, rate: str | None) -> None:
        """Limit what the host sends into the namespace to `rate` (tc's units, e.g. 400kbit); None lifts it."""
        if rate is None:
            subprocess.run(["tc", "qdisc", "del", "dev", self.veth_host, "root"], capture_output=True)
            return
        cmd = ["tc", "qdisc", "replace", "dev", self.veth_host, "root", "tbf", "rate", rate]
        subprocess.run([*cmd, "burst", "4kb", "latency", "400ms"], check=True, capture_output=True)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


# pytest-xdist workers (one process each) take disjoint subnets: worker w of n draws only numbers ≡ w (mod n)
_worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:])
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def _pick(count: int) -> int:
    """A random number below `count` that no other xdist worker of this run can pick."""
    return random.randrange(0, count // _workers) * _workers + _worker


def _taken() -> str:
    """Every IPv4 address and route on this host: a subnet found there (the host's own network, or a namespace a
    killed run left behind, whose older route would swallow our packets) must not be picked."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout
    return out + subprocess.run(["ip", "-4", "route", "show"], capture_output=True, text=True).stdout


def _free_pick(count: int, nets) -> int:
    """`_pick(count)` whose `nets(n)` (third-octet prefixes such as "10.78.200") are all unused on this host."""
    taken = _taken()
    for _ in range(200):
        n = _pick(count)
        if not any(f" {net}." in taken or f"\n{net}." in taken for net in nets(n)):
            return n
    # a taken subnet would fail later as a confusing "sshd did not start"
    raise RuntimeError(f"no free test subnet among {count} after 200 draws; `ip -4 route` shows what holds them")


_fleet_base: int | None = None  # one process's fleet: 10.78.<base + index>.0/30, index < 8, chosen on first use


def make_netns(index: int | None = None) -> Netns | str:
    """Create the namespace and veth pair, or return why that is impossible here. `index` (0-7) makes one of
    several namespaces of this process (a fleet); without it, the process's single one."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        return "network namespaces need root and iproute2"
    global _fleet_base
    tag = f"{os.getpid() % 100000}"
    if index is None:
        sub = _free_pick(64, lambda n: [f"10.77.{n}"])
        ns = Netns(f"el5-{tag}", f"el5h{tag}", f"10.77.{sub}.1", f"10.77.{sub}.2")
    else:
        if not 0 <= index < 8:
            raise ValueError("a fleet has namespaces 0-7")
        if _fleet_base is None:
            _fleet_base = _free_pick(32, lambda n: [f"10.78.{n * 8 + i}" for i in range(8)]) * 8
        tag = f"{tag}f{index}"
        net = f"10.78.{_fleet_base + index}"
        ns = Netns(f"el5-{tag}", f"el5h{tag}", f"{net}.1", f"{net}.2")
    try:
        ip("netns", "add", ns.name)
    except subprocess.CalledProcessError as ex:
        return f"cannot create a network namespace: {ex.stderr.decode().strip()}"
    try:
        ip("link", "add", ns.veth_host, "type", "veth", "peer", "name", f"el5d{tag}")
        ip("link", "set", f"el5d{tag}", "netns", ns.name)
        ip("addr", "add", f"{ns.host_ip}/30", "dev", ns.veth_host)
        ip("link", "set", ns.veth_host, "up")
        ip("netns", "exec", ns.name, "ip", "addr", "add", f"{ns.device_ip}/30", "dev", f"el5d{tag}")
        ip("netns", "exec", ns.name, "ip", "link", "set", f"el5d{tag}", "up")
        ip("netns", "exec", ns.name, "ip", "link", "set", "lo", "up")
    except subprocess.CalledProcessError as ex:
        remove_netns(ns)
        return f"cannot set up the veth pair: {ex.stderr.decode().strip()}"
    return ns


def remove_netns(ns: Netns) -> None:
    subprocess.run(["ip", "link", "del", ns.veth_host], capture_output=True)
    subprocess.run(["ip", "netns", "del", ns.name], capture_output=True)
