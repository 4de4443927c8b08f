"""A fleet of 8 real OpenSSH "devices", each in its own network namespace, rolled out to in stages by
`edgelstm deploy --inventory --rollout` and by the Ansible role (real ansible-core), with a device whose runtime
is broken and one whose link dies mid-upload. The tests run in order on one module-scoped fleet:

1. v1 everywhere (YAML inventory, all 8 in parallel): the per-device deploy time and the concurrency;
2. v2 by the CLI, `--rollout 1,10%,50%,100% --max-fail 5%` (stages 1, 1, 4, 2) with d4's runtime broken and
   d5's link cut at the middle of its upload, both in stage 3: stage 3 stops the rollout and rolls back whole,
   stage 4 is untouched, exit 1 with a table;
3. v2 by ansible-playbook (ansible/deploy.yml: serial [1, 10%, 50%, 100%], max_fail_percentage 5), d4 still
   broken and d5's link cut again, this time in the middle of Ansible's copy: the same abort through Ansible;
4. d4 repaired: the playbook brings all 8 to v2; 5. a second run reports changed=0 on every device;
6. every device ends on exactly one consistent model that runs (its outputs = this machine's).

The devices share one runtime venv (conftest's device_python, symlinked into each device's ~/.edgelstm/venv);
d4's "broken runtime" is that venv with a corrupted ai-edge-litert extension module in front of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import invoke

REPO = Path(__file__).resolve().parents[1]
N = 8
BROKEN, FLAKY = "d4", "d5"  # both in stage 3 of 1,10%,50%,100% over 8 hosts (d3-d6)


@dataclass
class Dev:
    name: str
    ns: object
    server: object

    @property
    def home(self) -> Path:
        return self.server.home

    def links(self) -> tuple[str | None, str | None]:
        root = self.home / ".edgelstm"
        names = ("current", "previous")
        return tuple(os.path.basename(os.readlink(root / n)) if (root / n).is_symlink() else None for n in names)

    def versions(self) -> list[str]:
        models = self.home / ".edgelstm" / "models"
        return sorted(p.name for p in models.iterdir() if not p.name.startswith(".")) if models.is_dir() else []


@dataclass
class Fleet:
    devs: list[Dev]
    base: Path
    ini: Path
    yaml: Path
    v1: Path
    v2: Path
    venv: Path
    broken_venv: Path

    def dev(self, name: str) -> Dev:
        return next(d for d in self.devs if d.name == name)

    def set_venv(self, name: str, venv: Path) -> None:
        link = self.dev(name).home / ".edgelstm" / "venv"
        if link.is_symlink():
            link.unlink()
        link.symlink_to(venv)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _step_model(out: Path, seed: int) -> Path:
    """A float LSTM step model with edgelstm metadata, 64 units: ~80 kB, so an upload lasts a few SFTP writes."""
    from conftest import _tiny_model

    from edgelstm.export.tflite import step_tflite
    from edgelstm.models.step import build_step_model

    cfg, model = _tiny_model(seed=seed, arch="lstm", window=20, layers=1, units=64)
    cfg.labels, cfg.channels, cfg.sample_rate = ["a", "b", "c", "d"], ["ax", "ay", "az"], 50.0
    out.write_bytes(step_tflite(build_step_model(cfg, model)))
    return out


def _broken_venv(base: Path, venv: Path) -> Path:
    """The shared venv behind a python that finds a corrupted ai_edge_litert first: the package imports (its
    version shows in status) but its interpreter extension is garbage, as after a bad write to the SD card."""
    site = next((venv / "lib").glob("python3*/site-packages"))
    real = site / "ai_edge_litert"
    shadow = base / "broken-site" / "ai_edge_litert"
    shadow.mkdir(parents=True)
    for entry in real.iterdir():
        if entry.name == "_pywrap_litert_interpreter_wrapper.so":
            (shadow / entry.name).write_bytes(b"\x7fELF" + b"\0" * 60)
        elif entry.name != "__pycache__":
            (shadow / entry.name).symlink_to(entry)
    broken = base / "broken-venv"
    (broken / "bin").mkdir(parents=True)
    py = broken / "bin" / "python"
    py.write_text(f'#!/bin/sh\nPYTHONPATH={shadow.parent} exec {venv}/bin/python "$@"\n')
    py.chmod(0o755)
    return broken


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, ssh_client_key, device_python):
    if not Path("/usr/sbin/sshd").exists():
        pytest.skip("openssh-server is not installed (apt-get install openssh-server)")
    if not shutil.which("tc"):
        pytest.skip("tc (iproute2) is not installed")
    from sshd import make_netns, remove_netns, start_sshd

    base = tmp_path_factory.mktemp("fleet")
    client = base / "client"
    (client / ".ssh").mkdir(parents=True)
    shutil.copy(ssh_client_key, client / ".ssh" / "id_ed25519")
    mp = pytest.MonkeyPatch()
    mp.setenv("HOME", str(client))
    mp.delenv("SSH_AUTH_SOCK", raising=False)
    devs: list[Dev] = []
    try:
        for i in range(N):
            ns = make_netns(i)
            if isinstance(ns, str):
                pytest.skip(ns)
            try:
                server = start_sshd(base / f"d{i + 1}", ssh_client_key.with_suffix(".pub"), ns.device_ip, 22, ns.name)
            except Exception:
                remove_netns(ns)
                raise
            devs.append(Dev(f"d{i + 1}", ns, server))
        (client / ".ssh" / "known_hosts").write_text("".join(d.server.known_hosts_line() for d in devs))
        venv = device_python.parent.parent
        for d in devs:
            (d.home / ".edgelstm").mkdir()
            (d.home / ".edgelstm" / "venv").symlink_to(venv)
        ini = base / "fleet.ini"
        ini.write_text(
            # OpenSSH (which Ansible runs) finds ~ through the password database, not $HOME: name both files
            "[all:vars]\nansible_user=root\nansible_python_interpreter=/usr/bin/python3\n"
            f"ansible_ssh_private_key_file={client}/.ssh/id_ed25519\n"
            f"ansible_ssh_extra_args=-oUserKnownHostsFile={client}/.ssh/known_hosts\n\n[devices]\n"
            + "".join(
                f"{d.name} ansible_host={d.ns.device_ip} ansible_port=22 ansible_remote_tmp={d.home}/.ansible/tmp\n"
                for d in devs
            )
        )
        yml = base / "fleet.yml"
        yml.write_text(
            "all:\n  vars: {ansible_user: root}\n  children:\n    devices:\n      hosts:\n"
            + "".join(f"        {d.name}: {{ansible_host: {d.ns.device_ip}}}\n" for d in devs)
        )
        models = base / "models"
        models.mkdir()
        yield Fleet(
            devs,
            base,
            ini,
            yml,
            _step_model(models / "v1.tflite", 0),
            _step_model(models / "v2.tflite", 1),
            venv,
            _broken_venv(base, venv),
        )
    finally:
        for d in devs:
            d.ns.shape(None)
            d.ns.link(True)
            d.server.stop()
            remove_netns(d.ns)
        mp.undo()


@contextmanager
def cut_mid_upload(dev: Dev, size: int, pattern: str, landed: int):
    """Slow `dev`'s link to ~50 kB/s and cut it (`ip link set down`) once a file matching `pattern` under its
    home exists with at least `landed` but fewer than `size` bytes; restore the link afterwards. Yields a dict
    whose "at" is the share that had landed."""
    dev.ns.shape("400kbit")
    cut: dict = {}
    stop = threading.Event()

    def cutter() -> None:
        while not stop.wait(0.005):
            for part in dev.home.glob(pattern):
                try:
                    got = part.stat().st_size
                except OSError:
                    continue
                if landed <= got < size:
                    dev.ns.link(False)
                    cut["at"] = got / size
                    return

    watcher = threading.Thread(target=cutter, daemon=True)
    watcher.start()
    try:
        yield cut
    finally:
        stop.set()
        watcher.join(5)
        dev.ns.link(True)
        dev.ns.shape(None)


def rows(stdout: str) -> dict[str, list[str]]:
    """HOST -> its table row's words, for the rows of the table `edgelstm deploy` prints."""
    out = {}
    for line in stdout.splitlines():
        words = line.split()
        for i, w in enumerate(words[:2]):
            if re.fullmatch(r"(root@)?(d\d|10\.78\.\d+\.2)", w):
                out[w] = words[i:]
    return out


def test_1_first_model_everywhere_in_parallel_from_a_yaml_inventory(fleet):
    t = time.perf_counter()
    r = invoke("deploy", fleet.v1, "--inventory", fleet.yaml, "--parallel", str(N), "--timeout", "10")
    wall = time.perf_counter() - t
    assert r.exit_code == 0, r.output
    table = rows(r.stdout)
    assert sorted(table) == [d.name for d in fleet.devs]  # rows by the inventory's names
    assert all(row[1] == "ok" for row in table.values())
    per_device = [float(row[2]) for row in table.values()]
    for d in fleet.devs:
        assert d.links() == (sha(fleet.v1), None)
    # the devices were deployed concurrently: the wall time is well under the sum of the per-device times
    assert wall < 0.6 * sum(per_device), (wall, per_device)
    print(
        f"\nv1 to {N} devices, --parallel {N}: wall {wall:.1f} s; per device {min(per_device):.1f}-"
        f"{max(per_device):.1f} s (mean {sum(per_device) / N:.1f}); concurrency {sum(per_device) / wall:.1f}"
    )


def test_2_cli_rollout_stops_at_the_failing_stage_rolls_it_back_and_leaves_later_stages(fleet):
    v1, v2 = sha(fleet.v1), sha(fleet.v2)
    fleet.set_venv(BROKEN, fleet.broken_venv)
    flaky = fleet.dev(FLAKY)
    t = time.perf_counter()
    with cut_mid_upload(flaky, fleet.v2.stat().st_size, ".edgelstm/models/.tmp-*/model.tflite.part", 32768) as cut:
        r = invoke(
            "deploy", fleet.v2, "--inventory", fleet.ini, "--rollout", "1,10%,50%,100%", "--max-fail", "5%",
            "--timeout", "3",
        )  # fmt: skip
    wall = time.perf_counter() - t
    print("\n" + r.stdout)
    assert r.exit_code == 1, r.output
    assert 0 < cut["at"] < 1
    assert r.stderr.strip().splitlines()[-1] == (
        "Error: rollout stopped at stage 3: 2 of 4 host(s) failed; that stage rolled back, 2 host(s) in later "
        "stages not started"
    )
    table = {line.split()[1]: line for line in r.stdout.splitlines()[1 : N + 1]}
    state = {name: line.split()[2] for name, line in table.items()}
    assert state == {
        "d1": "ok", "d2": "ok", "d3": "ROLLED", "d4": "FAILED", "d5": "FAILED", "d6": "ROLLED", "d7": "not",
        "d8": "not",
    }  # fmt: skip
    assert [line.split()[0] for line in r.stdout.splitlines()[1 : N + 1]] == ["1", "2", "3", "3", "3", "3", "-", "-"]
    assert "health check failed on the device: " in table["d4"] and table["d4"].rstrip().endswith(
        f"rolled back to {v1[:12]}"
    )
    assert "connection lost while uploading" in table["d5"]
    assert table["d5"].rstrip().endswith(f"the device's current model is unchanged ({v1[:12]})")
    assert f"healthy, rolled back to {v1[:12]} with its stage" in table["d3"]
    summary = r.stdout.splitlines()[N + 1 :]
    assert [s.split(":")[0] for s in summary] == ["stage 1", "stage 2", "stage 3"]
    assert re.fullmatch(r"stage 3: 4 host\(s\), 2 failed, [\d.]+ s: STOPPED the rollout", summary[2]), summary
    for name in ("d1", "d2"):
        assert fleet.dev(name).links() == (v2, v1)
    for name in ("d3", "d4", "d5", "d6"):
        assert fleet.dev(name).links() == (v1, None), name
    for name in ("d7", "d8"):  # later stage: not touched at all, v2 never uploaded
        assert fleet.dev(name).links() == (v1, None) and fleet.dev(name).versions() == [v1]
    assert not list((flaky.home / ".edgelstm" / "models").glob(f"{v2}"))  # the partial upload never became v2
    secs = [float(s.split(", ")[2].split(" s")[0]) for s in summary]
    print(f"CLI rollout wall {wall:.1f} s; stages {', '.join(f'{s:.1f} s' for s in secs)}; link cut at {cut['at']:.0%}")


def playbook(fleet: Fleet, model: Path, timeout: float = 240) -> tuple[subprocess.CompletedProcess, float]:
    exe = Path(sys.executable).with_name("ansible-playbook")
    if not exe.exists():
        pytest.skip("ansible-core is not installed (pip install 'edgelstm[ansible]')")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible" / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    args = [str(exe), "-i", str(fleet.ini), str(REPO / "ansible" / "deploy.yml"), "-e", f"edgelstm_model={model}"]
    args += ["-e", f"edgelstm_plan_dir={fleet.base / 'plan'}"]
    t = time.perf_counter()
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    p.stdout += p.stderr  # Ansible reports template and YAML errors on stderr: keep them in the assertions' view
    return p, time.perf_counter() - t


def recap(out: str) -> dict[str, dict[str, int]]:
    found = {}
    for m in re.finditer(r"^(d\d+)\s+:\s+(.*)$", out.split("PLAY RECAP")[-1], re.M):
        found[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return found


def batches(out: str) -> list[int]:
    """How many hosts each batch's first per-host task ran on, in order (Ansible prints one PLAY header per batch
    under `serial`)."""
    sizes = []
    for block in re.split(r"^PLAY \[", out, flags=re.M)[1:]:
        first = block.split("TASK [edgelstm_deploy : Remember the plan")[1].split("TASK [")[0]
        sizes.append(len(re.findall(r"^ok: \[d\d+\]", first, re.M)))
    return sizes


def test_3_ansible_playbook_stops_the_same_way(fleet):
    """d4 still broken, d5's link cut in the middle of Ansible's copy of the model. Ansible's own
    max_fail_percentage counts failed hosts, not unreachable ones (strategy/linear.py: `_failed_hosts`), so it
    lets the batch go on; the role's gate counts d5 too and stops the rollout."""
    v1, v2 = sha(fleet.v1), sha(fleet.v2)
    flaky = fleet.dev(FLAKY)
    # Ansible's copy lands in REMOTE_TMP/ansible-tmp-*/.source.<ext> (each device's own remote tmp, set in the
    # inventory) (ext: the dest's) before the module moves it: cut once it is open on the device and not complete
    with cut_mid_upload(flaky, fleet.v2.stat().st_size, ".ansible/tmp/ansible-tmp-*/.source*", 0) as cut:
        p, wall = playbook(fleet, fleet.v2)
    out = p.stdout
    assert p.returncode != 0, out
    assert 0 <= cut["at"] < 1, out[-3000:]
    assert batches(out) == [1, 1, 4], out[-3000:]
    rc = recap(out)
    assert sorted(rc) == ["d1", "d2", "d3", "d4", "d5", "d6"]  # d7, d8: their batch never started
    assert all(rc[h]["failed"] == 0 and rc[h]["changed"] == 0 for h in ("d1", "d2"))  # v2 already current there
    assert all(rc[h]["failed"] == 1 for h in ("d3", "d4", "d6")) and rc["d5"]["unreachable"] == 1
    assert re.search(r"fatal: \[d5\]: UNREACHABLE!", out)
    assert re.search(r"fatal: \[d4\].*health check failed on the device: .*; current is " + v1[:12], out)
    assert re.search(r"fatal: \[d3\].*healthy, rolled back with its stage: 2 of 4 hosts failed", out)
    rolled = out.split("TASK [edgelstm_deploy : Roll this healthy device back")[-1].split("TASK [")[0]
    assert sorted(re.findall(r"changed: \[(d\d)\]", rolled)) == ["d3", "d6"]
    for name in ("d1", "d2"):
        assert fleet.dev(name).links() == (v2, v1)
    for name in ("d3", "d4", "d5", "d6", "d7", "d8"):
        assert fleet.dev(name).links() == (v1, None), name
    for name in ("d5", "d7", "d8"):  # d5's partial copy never became a version; d7, d8 were never touched
        assert fleet.dev(name).versions() == [v1], name
    # what is left of d5's upload: its empty upload folder, which the next `prepare` removes (test 6 checks)
    assert [p.name[:17] for p in (flaky.home / ".edgelstm" / "models").glob(".tmp-*")] == [f".tmp-{v2[:12]}"]
    print(f"\nansible-playbook abort run: {wall:.1f} s; d5's link cut at {cut['at']:.0%} of Ansible's copy")


def test_4_repaired_fleet_all_on_the_new_model_then_5_second_run_changes_nothing(fleet):
    v1, v2 = sha(fleet.v1), sha(fleet.v2)
    fleet.set_venv(BROKEN, fleet.venv)
    p, wall = playbook(fleet, fleet.v2)
    assert p.returncode == 0, p.stdout[-4000:]
    assert batches(p.stdout) == [1, 1, 4, 2]
    rc = recap(p.stdout)
    assert sorted(rc) == [d.name for d in fleet.devs] and all(v["failed"] == 0 for v in rc.values())
    # d1, d2: on v2 since the CLI's stages; d3, d4, d6 hold v2 (the CLI uploaded it): the switch alone; d5 (its
    # link died in both uploads), d7, d8: prepare, upload, commit, health.json, switch
    changed = {h: v["changed"] for h, v in rc.items()}
    assert changed == {"d1": 0, "d2": 0, "d3": 1, "d4": 1, "d5": 5, "d6": 1, "d7": 5, "d8": 5}, changed
    for d in fleet.devs:
        assert d.links() == (v2, v1), d.name
    # when each device switched (the `current` link's own mtime): batch 3 (d3-d6), then batch 4 (d7, d8)
    switched = {d.name: os.lstat(d.home / ".edgelstm" / "current").st_mtime for d in fleet.devs[2:]}
    t3, t4 = [switched[h] for h in ("d3", "d4", "d5", "d6")], [switched[h] for h in ("d7", "d8")]
    assert max(t3) < min(t4)  # batch 4 started after batch 3 had finished
    spread3, spread4, gap = max(t3) - min(t3), max(t4) - min(t4), min(t4) - max(t3)

    p2, wall2 = playbook(fleet, fleet.v2)
    assert p2.returncode == 0, p2.stdout[-4000:]
    rc2 = recap(p2.stdout)
    assert sorted(rc2) == [d.name for d in fleet.devs]
    assert {h: v["changed"] for h, v in rc2.items()} == {d.name: 0 for d in fleet.devs}
    assert all(v["failed"] == 0 and v["unreachable"] == 0 for v in rc2.values())
    print(
        f"\nansible-playbook to v2: {wall:.1f} s (4 batches; switches within batch 3 {spread3:.2f} s apart, within "
        f"batch 4 {spread4:.2f} s, batch 3 -> 4 {gap:.1f} s); second run (changed=0 everywhere): {wall2:.1f} s"
    )


def test_6_every_device_ends_on_one_consistent_model_that_runs(fleet):
    from edgelstm.deploy.deploy import HealthCheck, numbers
    from edgelstm.deploy.ssh import Connection, ConnectOptions, HostSpec

    v2 = sha(fleet.v2)
    check = HealthCheck().prepare(fleet.v2)
    want = check.local(fleet.v2)
    for d in fleet.devs:
        root = d.home / ".edgelstm"
        assert d.links()[0] == v2
        assert (root / "current" / "model.tflite").read_bytes() == fleet.v2.read_bytes()
        assert not [p for p in (root / "models").iterdir() if p.name.startswith(".tmp-")]
        meta = json.loads((root / "current" / "meta.json").read_text())
        assert meta["sha256"] == v2 and meta["size"] == fleet.v2.stat().st_size
        with Connection(HostSpec.parse(d.server.spec), ConnectOptions(timeout=10)) as conn:
            rc, out, err = conn.run(
                f"{root}/venv/bin/python -u -m edgelstm.runtime {root}/current/model.tflite - --format json "
                "--no-default-delegates",
                stdin=check.stdin,
                timeout=60,
            )
        assert rc == 0, err
        got = numbers(out, every_line=True)
        assert len(got) == len(want) and max(abs(a - b) for a, b in zip(got, want)) <= 1e-4, d.name
