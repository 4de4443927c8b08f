"""The test namespaces avoid a subnet already on the host: a namespace a killed run left behind keeps its veth and
route, and the older route swallows the new device's packets ("sshd did not start", connection refused, in CI)."""

import os
import shutil
import subprocess

import pytest
import sshd

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"), reason="needs root and iproute2")


def _leftover(name: str, host_ip: str) -> None:
    sshd.ip("link", "add", name, "type", "veth", "peer", "name", f"{name}p")
    sshd.ip("addr", "add", f"{host_ip}/30", "dev", name)
    sshd.ip("link", "set", name, "up")


def test_a_leftover_subnet_is_never_picked_again(monkeypatch):
    first = sshd._pick(32)  # the fleet base the old code would have used
    draws = iter([first, first, first + sshd._workers if first + sshd._workers < 32 else first - sshd._workers])
    monkeypatch.setattr(sshd, "_pick", lambda count: next(draws))
    monkeypatch.setattr(sshd, "_fleet_base", None)
    stale = f"elz{os.getpid() % 100000}"
    _leftover(stale, f"10.78.{first * 8 + 5}.1")  # one of the 8 subnets of that fleet
    try:
        ns = sshd.make_netns(0)
        assert not isinstance(ns, str), ns
        try:
            assert sshd._fleet_base != first * 8
            route = subprocess.run(["ip", "route", "get", ns.device_ip], capture_output=True, text=True).stdout
            assert f"dev {ns.veth_host} " in route
        finally:
            sshd.remove_netns(ns)
    finally:
        subprocess.run(["ip", "link", "del", stale], capture_output=True)
