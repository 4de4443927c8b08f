"""Staged-rollout planning and Ansible inventories: pure functions, no devices (the fleet is tests/test_fleet.py)."""

from __future__ import annotations

import pytest

from edgelstm.deploy.inventory import expand, read_inventory
from edgelstm.deploy.rollout import parse_max_fail, parse_rollout, stage_exceeds, stage_sizes
from edgelstm.errors import InputError


@pytest.mark.parametrize(
    "n, spec, sizes",
    [
        (8, "1,10%,50%,100%", [1, 1, 4, 2]),  # 10% of 8 rounds down to 0 -> at least 1; 100% = the rest
        (100, "1,10%,50%,100%", [1, 10, 50, 39]),
        (10_000, "1,10%,50%,100%", [1, 1000, 5000, 3999]),
        (7, "2", [2, 2, 2, 1]),  # the last entry repeats
        (5, "1,30%", [1, 1, 1, 1, 1]),  # 30% of 5 = 1.5 -> 1, repeated
        (3, "10,50%", [3]),
        (1, "1,10%,50%,100%", [1]),
    ],
)
def test_stage_sizes_follow_ansible_serial(n, spec, sizes):
    assert stage_sizes(n, parse_rollout(spec)) == sizes
    assert sum(sizes) == n


def test_stage_gate_is_strictly_greater_than_the_threshold():
    five = parse_max_fail("5%")
    assert not stage_exceeds(0, 1, five)
    assert stage_exceeds(1, 1, five)  # one canary failing is 100 %
    assert not stage_exceeds(1, 20, five)  # exactly 5 %: Ansible continues
    assert stage_exceeds(2, 20, five)
    assert stage_exceeds(1, 4, five)  # 25 %
    assert not stage_exceeds(1, 4, parse_max_fail("25%"))
    assert not stage_exceeds(2, 50, parse_max_fail("2")) and stage_exceeds(3, 50, parse_max_fail("2"))
    assert stage_exceeds(1, 1000, parse_max_fail("0"))


@pytest.mark.parametrize(
    "spec, message",
    [
        ("1,x,100%", "bad --rollout '1,x,100%': each stage is a count or a percentage, as in 1,10%,50%,100%"),
        ("0,100%", "bad --rollout stage '0': counts are >= 1, percentages in (0, 100]"),
        ("1,150%", "bad --rollout stage '150%': counts are >= 1, percentages in (0, 100]"),
    ],
)
def test_bad_rollout_specs_are_refused_by_message(spec, message):
    with pytest.raises(InputError) as err:
        parse_rollout(spec)
    assert str(err.value) == message


def test_bad_max_fail_is_refused():
    with pytest.raises(InputError, match=r"bad --max-fail 'five': a count \(2\) or a percentage"):
        parse_max_fail("five")
    with pytest.raises(InputError, match=r"percentages in \[0, 100\]"):
        parse_max_fail("101%")


def test_host_ranges_expand_like_ansible():
    assert expand("pi[01:03]") == ["pi01", "pi02", "pi03"]
    assert expand("r[a:c]-[1:2]") == ["ra-1", "ra-2", "rb-1", "rb-2", "rc-1", "rc-2"]
    assert expand("plain") == ["plain"]


INI = """\
# a comment
lonely ansible_host=10.0.0.9

[canary]
pi-lab ansible_host=192.168.1.20 ansible_port=2222

[line1]
pi[01:03] ansible_user=pi
pi02 ansible_host=10.0.0.2

[line1:vars]
ansible_port=22
ansible_user=ops

[fleet:children]
canary
line1

[fleet:vars]
ansible_user=root
ansible_port=2200
"""

YAML = """\
all:
  vars:
    ansible_user: root
  hosts:
    lonely: {ansible_host: 10.0.0.9}
  children:
    fleet:
      vars: {ansible_port: 2200}
      children:
        canary:
          hosts:
            pi-lab: {ansible_host: 192.168.1.20, ansible_port: 2222}
        line1:
          vars: {ansible_port: 22, ansible_user: ops}
          hosts:
            pi[01:03]: {ansible_user: pi}
            pi02: {ansible_host: 10.0.0.2}
"""


@pytest.mark.parametrize("kind", ["ini", "yaml"])
def test_inventory_hosts_groups_and_variable_precedence(tmp_path, kind):
    path = tmp_path / ("hosts.ini" if kind == "ini" else "hosts.yml")
    path.write_text(INI if kind == "ini" else YAML)
    hosts = read_inventory(path)
    specs = {h.name: h.spec for h in hosts}
    # host vars beat group vars; a child group's (line1: port 22) beat its parent's (fleet: port 2200)
    assert specs["pi-lab"] == "root@192.168.1.20:2222"
    assert specs["pi01"] == "pi@pi01:22" and specs["pi03"] == "pi@pi03:22"
    assert specs["pi02"] == "pi@10.0.0.2:22"
    assert specs["lonely"] == ("10.0.0.9" if kind == "ini" else "root@10.0.0.9")
    assert sorted(specs) == ["lonely", "pi-lab", "pi01", "pi02", "pi03"]
    assert [h.name for h in read_inventory(path, ["canary"])] == ["pi-lab"]
    assert [h.name for h in read_inventory(path, ["line1", "lonely"])] == ["lonely", "pi01", "pi02", "pi03"]
    assert set(next(h for h in hosts if h.name == "pi01").groups) == {"fleet", "line1"}


def test_inventory_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.ini"
    bad.write_text("[g]\nhost1 ansible_port\n")
    with pytest.raises(InputError, match=r"bad.ini:2: expected key=value after the host name, got 'ansible_port'"):
        read_inventory(bad)
    bad.write_text("[g:children]\nnope\n[g]\n")
    with pytest.raises(InputError, match=r"no hosts in the inventory"):
        read_inventory(bad)
    bad.write_text("[g]\nh1\n")
    with pytest.raises(InputError, match=r"no group or host named line9"):
        read_inventory(bad, ["line9"])
    with pytest.raises(InputError, match=r"cannot read the inventory"):
        read_inventory(tmp_path / "missing.ini")
    cyc = tmp_path / "cyc.ini"
    cyc.write_text("[a:children]\nb\n[b:children]\na\n[a]\nh\n")
    with pytest.raises(InputError, match=r"groups form a cycle"):
        read_inventory(cyc)


def test_large_inventory_reads_fast(tmp_path):
    import time

    path = tmp_path / "big.ini"
    path.write_text("[site:children]\nline1\nline2\n[line1]\npi[00001:05000]\n[line2]\npj[00001:05000]\n")
    t = time.perf_counter()
    hosts = read_inventory(path)
    assert len(hosts) == 10_000 and time.perf_counter() - t < 2.0
    assert stage_sizes(len(hosts), parse_rollout("1,10%,50%,100%")) == [1, 1000, 5000, 3999]


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--rollout", "1,x"],
            "Error: bad --rollout '1,x': each stage is a count or a percentage, as in 1,10%,50%,100%",
        ),
        (
            ["--rollout", "1,100%", "--max-fail", "lots"],
            "Error: bad --max-fail 'lots': a count (2) or a percentage of the stage (5%)",
        ),
        (["--limit", "line1"], "Error: --limit selects from an --inventory; give one"),
        ([], "Error: give at least one --host, or an --inventory"),
    ],
)
def test_deploy_refuses_bad_rollout_options_before_any_host(tmp_path, args, message):
    from conftest import invoke

    model = tmp_path / "m.bin"
    model.write_bytes(b"x" * 10)
    host = [] if args == [] or args[0] == "--limit" else ["--host", "root@127.0.0.1:1"]
    r = invoke("deploy", model, *host, *args)
    assert r.exit_code == 2, r.output
    assert r.stderr.strip().splitlines()[-1] == message


def test_deploy_names_a_missing_inventory(tmp_path):
    from conftest import invoke

    model = tmp_path / "m.bin"
    model.write_bytes(b"x")
    r = invoke("deploy", model, "--inventory", tmp_path / "nope.ini")
    assert r.exit_code == 2
    assert (
        r.stderr.strip().splitlines()[-1]
        == f"Error: {tmp_path / 'nope.ini'}: cannot read the inventory: No such file or directory"
    )


@pytest.mark.slow  # ansible-playbook starts in ~3 s
def test_sample_playbook_and_role_parse_with_real_ansible(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("ansible-playbook")
    if not exe.exists():
        pytest.skip("ansible-core is not installed (pip install 'edgelstm[ansible]')")
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, ANSIBLE_CONFIG=str(repo / "ansible" / "ansible.cfg"), ANSIBLE_HOME=str(tmp_path))
    p = subprocess.run(
        [
            str(exe),
            "--syntax-check",
            "-i",
            str(repo / "ansible" / "inventory.example.ini"),
            str(repo / "ansible" / "deploy.yml"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    # the example inventory is one both tools read
    hosts = read_inventory(repo / "ansible" / "inventory.example.ini")
    assert len(hosts) == 41 and hosts[0].spec == "192.168.1.20" and hosts[1].spec == "pi@pi01:22"
