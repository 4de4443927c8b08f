"""Deploy torture (issue 12, Mender's style): 50 deploys to ONE device in a network namespace (real sshd), two
models alternating, each cut or killed at a seeded random point of one of its phases:

- upload-link: the veth link set down while the .part file on the device is between 5 % and 95 % of the model;
- upload-kill: the device's sshd session processes killed (SIGKILL) at such a point: the connection dies;
- commit: the agent killed after the device's SHA-256 check, before the rename into models/<sha>;
- link: the agent killed between making the temporary `current` link and renaming it over `current`;
- health-agent: the agent killed while the health check runs (a seeded delay after the links switched);
- health-runtime: the health check's own process (`python -m edgelstm.runtime`) killed on the device.

The agent kills use the agent's off-by-default hold hook (EDGELSTM_TEST_AGENT_HOLD, set only in this sshd's
authorized_keys `environment=`): the agent writes its pid at the named phase and waits, the test sends SIGKILL.
After EVERY deploy, on the device's files: `current` resolves to exactly one of the two models, whose file has that
SHA-256, no link temporary or activation journal is left once the device has been spoken to again, and the model
loads in the interpreter; every 10 rounds the device's runtime runs it over SSH and gives this machine's numbers.
Every 5 faulted deploys, a clean deploy must succeed (the device recovers).
"""

from __future__ import annotations

import collections
import hashlib
import os
import random
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROUNDS = 50
PHASES = ("upload-link", "upload-kill", "commit", "link", "health-agent", "health-runtime")
# Link cuts cost a keepalive timeout each (about 3 s): fewer of them than of the instant kills.
WEIGHTS = (1, 3, 3, 3, 3, 3)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """Two float LSTM step models with edgelstm metadata (random weights, 48 units: ~50 kB, so an upload over the
    shaped link lasts a few hundred ms and can be cut in its middle)."""
    from conftest import _tiny_model

    from edgelstm.export.tflite import step_tflite
    from edgelstm.models.step import build_step_model

    out = tmp_path_factory.mktemp("torture-models")
    paths = []
    for seed in (0, 1):
        cfg, model = _tiny_model(seed=seed, arch="lstm", window=20, layers=1, units=48)
        cfg.labels, cfg.channels, cfg.sample_rate = ["a", "b", "c", "d"], ["ax", "ay", "az"], 50.0
        paths.append(out / f"m{seed}.tflite")
        paths[-1].write_bytes(step_tflite(build_step_model(cfg, model)))
    return paths


def children(pid: int) -> list[int]:
    """Every descendant of `pid`, from /proc (the device's sshd sessions)."""
    kids: dict[int, list[int]] = collections.defaultdict(list)
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            kids[ppid].append(int(d))
    out, todo = [], [pid]
    while todo:
        for k in kids[todo.pop()]:
            out.append(k)
            todo.append(k)
    return out


def runtime_pids(root: Path) -> list[int]:
    """The device's health-check processes: `python -m edgelstm.runtime` on a model under `root`."""
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cmd = Path(f"/proc/{d}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"edgelstm.runtime" in cmd and any(a.startswith(str(root).encode()) for a in cmd):
                found.append(int(d))
    return found


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_for(cond, timeout: float = 20.0, step: float = 0.002):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(step)
    return None


def test_fifty_cut_deploys_always_leave_one_intact_model_that_runs(tmp_path, ssh_home, netns_device, two_models):
    from ai_edge_litert.interpreter import Interpreter

    from edgelstm.deploy.deploy import DeployOptions, HealthCheck, known_recording, numbers, prepare, run_hosts
    from edgelstm.deploy.device import Device
    from edgelstm.deploy.ssh import Connection, ConnectOptions, HostSpec
    from edgelstm.modelfile.read import read_metadata

    ns, server = netns_device
    with open(ssh_home / ".ssh" / "known_hosts", "a") as f:
        f.write(server.known_hosts_line())
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    keys = server.home.parent / "authorized_keys"  # read by sshd at every login: the hook's env for the agent
    keys.write_text(f'environment="EDGELSTM_TEST_AGENT_HOLD={hooks}",' + keys.read_text())
    root = server.home / ".edgelstm"
    root.mkdir()
    (root / "venv").symlink_to(Path(sys.prefix))  # the device's runtime venv: numpy, ai-edge-litert, edgelstm
    shas = {sha(m): m for m in two_models}
    size = {s: m.stat().st_size for s, m in shas.items()}
    host = server.spec
    opts = DeployOptions(install_runtime=False, connect=ConnectOptions(timeout=2, keepalive=1))
    ready = {s: prepare(m, [host], opts) for s, m in shas.items()}  # the local health run once per model
    expected = {s: r[3] for s, r in ready.items()}

    def deploy(target: str):
        model, digest, o, numbers_here = ready[target]
        return run_hosts(model, digest, numbers_here, [host], o)[0]

    rng = random.Random(12)

    def current() -> str | None:
        return os.path.basename(os.readlink(root / "current")) if (root / "current").is_symlink() else None

    def check_files(full: bool) -> str:
        """`current` is one of the two, its file has its SHA-256 and loads; with `full`, it runs on the device."""
        cur = current()
        assert cur in shas, cur
        model = (root / "current" / "model.tflite").resolve()
        assert model.parent == (root / "models" / cur).resolve()
        assert sha(model) == cur
        it = Interpreter(model_path=str(model))
        it.allocate_tensors()
        assert read_metadata(model)["n_features"] == 3
        if full:
            plan = HealthCheck().prepare(shas[cur])
            with Connection(HostSpec.parse(host), ConnectOptions(timeout=10)) as conn:
                rc, out, err = conn.run(
                    f"{root}/venv/bin/python -m edgelstm.runtime {root}/current/model.tflite - --format json "
                    "--no-default-delegates",
                    stdin=known_recording(read_metadata(model)).encode(),
                    timeout=60,
                )
            assert rc == 0, err
            got = numbers(out, every_line=True)
            assert plan.compare(expected[cur], got) <= 1e-4
        return cur

    def speak_again() -> None:
        """One agent call (what the next deploy's first step does): it undoes a killed agent's activation."""
        with Connection(HostSpec.parse(host), ConnectOptions(timeout=10)) as conn:
            assert Device(conn, str(root)).agent("has", current())["ok"]

    def clean_deploy(target: str) -> None:
        res = deploy(target)
        assert res.ok, res.message
        assert current() == target
        assert not [p.name for p in (root / "models").iterdir() if p.name.startswith(".tmp-")]

    def cut_deploy(rnd: int, phase: str, new: str):
        """Deploy `new` in a thread and cut or kill it in `phase`; the DeployResult."""
        box: dict = {}

        def go() -> None:
            box["res"] = deploy(new)

        # the device no longer has the new version (as after a prune): every deploy uploads it
        if (root / "previous").is_symlink():
            (root / "previous").unlink()
        shutil.rmtree(root / "models" / new, ignore_errors=True)
        stale = {p.name for p in (root / "models").glob(".tmp-*")}

        if phase.startswith("upload"):
            ns.shape("2mbit")  # ~250 kB/s: the upload lasts long enough to be cut in its middle
            at = rng.uniform(0.05, 0.95)
        elif phase in ("commit", "link", "health-agent"):
            (hooks / phase.split("-")[0]).write_text("")
        worker = threading.Thread(target=go)
        worker.start()
        if phase.startswith("upload"):

            def landed() -> bool:
                try:  # a staging folder may vanish while it is listed or read (pathlib's glob does not skip it)
                    parts = list((root / "models").glob(".tmp-*/*.part"))
                except OSError:
                    return False
                for part in parts:
                    if part.parent.name in stale:
                        continue
                    try:
                        return part.stat().st_size >= at * size[new]
                    except OSError:
                        pass
                return False

            assert wait_for(landed), f"round {rnd}: the upload never reached {at:.0%}"
            if phase == "upload-link":
                ns.link(False)
            else:
                for pid in children(server.proc.pid):
                    kill(pid)
        elif phase == "health-runtime":
            time.sleep(rng.uniform(0, 0.3))
            pids = wait_for(lambda: runtime_pids(root) or not worker.is_alive())
            assert pids, f"round {rnd}: the health check never started"
            time.sleep(rng.uniform(0, 0.2))
            for pid in pids if pids is not True else ():
                kill(pid)
        else:
            name = phase.split("-")[0]
            pid = wait_for(lambda: (hooks / f"{name}.pid").exists() and int((hooks / f"{name}.pid").read_text()))
            assert pid, f"round {rnd}: the agent never reached {phase}"
            if phase == "health-agent":
                (hooks / name).unlink()  # let the check start, then kill the agent in its middle
                time.sleep(rng.uniform(0.05, 0.4))
            kill(pid)
            (hooks / name).unlink(missing_ok=True)
            (hooks / f"{name}.pid").unlink()
        worker.join(60)
        if worker.is_alive():  # where every thread is, so a hang names its line
            stacks = "".join(
                f"--- thread {ident}\n" + "".join(traceback.format_stack(frame))
                for ident, frame in sys._current_frames().items()
            )
            pytest.fail(f"round {rnd}: the deploy hangs after a {phase} cut\n{stacks}")
        ns.link(True)
        ns.shape(None)
        return box["res"]

    first = deploy(sha(two_models[0]))
    assert first.ok, first.message
    cut = collections.Counter()
    ended = collections.Counter()
    undone = 0
    said: dict = {}
    t0 = time.perf_counter()
    for rnd in range(ROUNDS):
        old = check_files(full=False)
        new = next(s for s in shas if s != old)
        phase = rng.choices(PHASES, WEIGHTS)[0]
        cut[phase] += 1
        res = cut_deploy(rnd, phase, new)
        if res.ok:  # the health check had already passed when the agent or its check was killed
            assert phase.startswith("health") and current() == new, (phase, res.message)
        else:
            assert "\n" not in res.message and "Traceback" not in res.message, res.message
        if phase.startswith("upload"):
            assert "the device's current model is unchanged" in res.message, res.message
        journal = (root / "activating.json").exists()
        check_files(full=False)
        # a failed deploy never leaves an unchecked model current: it is the old one, or the journal undoes it (an
        # agent killed after its check passed, before it replied, is a deploy: res.ok above)
        assert res.ok or current() == old or journal, f"round {rnd} ({phase}): {res.message}"
        said.setdefault(phase, res.message)
        if "its half-done switch was undone" in res.message:  # the host's second agent call undid it at once
            assert current() == old, res.message
            undone += 1
        if journal:
            speak_again()
            undone += 1
            assert current() == old, f"round {rnd}: a killed activation was not undone"
        leftovers = [p.name for p in root.iterdir() if ".tmp-" in p.name or p.name == "activating.json"]
        assert not leftovers, f"round {rnd} ({phase}): {leftovers}"
        ended["new" if current() == new else "old"] += 1
        check_files(full=rnd % 10 == 9)
        if rnd % 5 == 4:
            clean_deploy(next(s for s in shas if s != current()))
            check_files(full=False)
    seconds = time.perf_counter() - t0
    print(
        f"\ndeploy torture: {ROUNDS} cut deploys in {seconds:.1f} s; cut at "
        + ", ".join(f"{p} {cut[p]}" for p in PHASES)
        + f"; ended on the old model {ended['old']}, on the new {ended['new']}; killed activations undone by the "
        f"host's next agent call {undone}; clean deploys after cuts {ROUNDS // 5}, all ok"
    )
    print("\n".join(f"  {p}: {m}" for p, m in said.items()))
    assert sum(cut.values()) == ROUNDS and all(cut[p] >= 2 for p in PHASES)
    assert ended["old"] >= cut["upload-link"] + cut["upload-kill"] + cut["commit"]
