"""Deploy over SSH to real sshd servers: one on 127.0.0.1, one in a network namespace whose link we cut."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from conftest import invoke

# The model is an opaque file here; the health check reads it with the device's python3 and prints two numbers.
HEALTH = (
    "{python} -c \"import sys, json; d = open(sys.argv[1], 'rb').read(); "
    'print(json.dumps([len(d), sum(d[:4096]) % 997]))" {model}'
)


def model_file(path: Path, size: int = 4096, seed: int = 0) -> Path:
    path.write_bytes(hashlib.shake_256(f"model-{seed}".encode()).digest(size))
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def links(home: Path) -> tuple[str | None, str | None]:
    root = home / ".edgelstm"
    return tuple(
        os.path.basename(os.readlink(root / n)) if (root / n).is_symlink() else None for n in ("current", "previous")
    )


def trust(home: Path, server) -> None:
    with open(home / ".ssh" / "known_hosts", "a") as f:
        f.write(server.known_hosts_line())


def last_line(result) -> str:
    return result.stderr.strip().splitlines()[-1]


def test_deploy_switch_keep_and_status_via_ssh_config_alias(tmp_path, ssh_home, sshd):
    trust(ssh_home, sshd)
    (ssh_home / ".ssh" / "config").write_text(
        f"Host dev1\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User root\n  IdentityFile ~/.ssh/id_ed25519\n"
    )
    models = [model_file(tmp_path / f"m{i}.bin", seed=i) for i in range(4)]
    args = ["--host", "dev1", "--no-install-runtime", "--health-cmd", HEALTH]

    r = invoke("deploy", models[0], *args)
    assert r.exit_code == 0, r.output
    assert links(sshd.home) == (sha(models[0]), None)
    deployed = sshd.home / ".edgelstm" / "models" / sha(models[0]) / "model.bin"
    assert deployed.read_bytes() == models[0].read_bytes()
    assert "dev1  ok" in r.stdout
    assert "SHA-256 verified on the device" in r.stderr and "health check passed (2 numbers" in r.stderr

    r = invoke("deploy", models[1], *args)
    assert r.exit_code == 0, r.output
    assert links(sshd.home) == (sha(models[1]), sha(models[0]))

    # Same version again: no upload, nothing switched, still healthy.
    r = invoke("deploy", models[1], *args)
    assert r.exit_code == 0, r.output
    assert "already on the device: no upload" in r.stderr
    assert links(sshd.home) == (sha(models[1]), sha(models[0]))

    for m in models[2:]:
        r = invoke("deploy", m, *args, "--keep", "1")
        assert r.exit_code == 0, r.output
    kept = sorted(p.name for p in (sshd.home / ".edgelstm" / "models").iterdir())
    assert kept == sorted([sha(models[3]), sha(models[2])])  # newest 1, plus previous which is never pruned
    assert links(sshd.home) == (sha(models[3]), sha(models[2]))

    r = invoke("remote", "status", "--host", "dev1")
    assert r.exit_code == 0, r.output
    assert f"current   {sha(models[3])}" in r.stdout
    assert f"previous  {sha(models[2])}" in r.stdout
    assert "versions  2 under" in r.stdout
    assert "edgelstm not installed" in r.stdout


def test_unknown_host_key_is_refused_then_trusted_with_fingerprint(tmp_path, ssh_home, sshd):
    m = model_file(tmp_path / "m.bin")
    args = ["--host", sshd.spec, "--no-install-runtime", "--health-cmd", HEALTH]
    fp = subprocess.run(
        ["ssh-keygen", "-lf", "-"], input=sshd.host_key_pub, capture_output=True, text=True, check=True
    ).stdout.split()[1]

    r = invoke("deploy", m, *args)
    assert r.exit_code == 1
    assert last_line(r) == (
        f"Error: {sshd.spec}: [127.0.0.1]:{sshd.port} is not in {ssh_home}/.ssh/known_hosts "
        f"(it offers ssh-ed25519 {fp}); check that fingerprint on the device, then rerun with "
        "--trust-new-host"
    )
    assert not (sshd.home / ".edgelstm").exists()

    r = invoke("deploy", m, *args, "--trust-new-host")
    assert r.exit_code == 0, r.output
    assert f"trusted new host key of [127.0.0.1]:{sshd.port}: ssh-ed25519 {fp}" in r.stderr
    assert (ssh_home / ".ssh" / "known_hosts").read_text() == sshd.known_hosts_line()
    r = invoke("deploy", m, *args)  # now known: no flag needed
    assert r.exit_code == 0, r.output


def test_changed_host_key_is_refused(tmp_path, ssh_home, sshd):
    other = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")])
    assert other.returncode == 0
    kind, b64 = (tmp_path / "other.pub").read_text().split()[:2]
    (ssh_home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{sshd.port} {kind} {b64}\n")
    r = invoke(
        "deploy",
        model_file(tmp_path / "m.bin"),
        "--host",
        sshd.spec,
        "--no-install-runtime",
        "--health-cmd",
        HEALTH,
        "--trust-new-host",
    )
    assert r.exit_code == 1
    assert "does not match" in last_line(r) and "refusing to connect" in last_line(r)
    assert not (sshd.home / ".edgelstm").exists()


def test_health_check_failure_rolls_back(tmp_path, ssh_home, sshd):
    trust(ssh_home, sshd)
    good, bad = model_file(tmp_path / "good.bin", seed=1), model_file(tmp_path / "bad.bin", seed=2)
    args = ["--host", sshd.spec, "--no-install-runtime", "--health-cmd", HEALTH]
    assert invoke("deploy", good, *args).exit_code == 0
    wrong = tmp_path / "expected.json"
    wrong.write_text(json.dumps([4096, 1]))  # the numbers the device must give; it will not

    r = invoke("deploy", bad, *args, "--health-expect", wrong)
    assert r.exit_code == 1
    assert last_line(r).startswith(
        f"Error: {sshd.spec}: health check failed: outputs differ from the local ones (max |Δ| "
    )
    assert last_line(r).endswith(f"; rolled back to {sha(good)[:12]}")
    assert links(sshd.home) == (sha(good), None)
    assert f"{sshd.spec}  FAILED" in r.stdout


def test_an_agent_lost_after_its_health_check_passed_is_a_deploy(tmp_path, ssh_home, sshd):
    """The agent removes its journal only once the check passed; killed after that, before it replies, the host's
    second call finds the new version current and no journal: deployed, said so, exit 0 (not 'failed' with the new
    model running)."""
    import signal
    import threading

    trust(ssh_home, sshd)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    keys = sshd.home.parent / "authorized_keys"  # the agent's hold hook (agent.py), off unless this env is set
    keys.write_text(f'environment="EDGELSTM_TEST_AGENT_HOLD={hooks}",' + keys.read_text())
    old, new = model_file(tmp_path / "old.bin", seed=1), model_file(tmp_path / "new.bin", seed=2)
    args = ["--host", sshd.spec, "--no-install-runtime", "--health-cmd", HEALTH]
    assert invoke("deploy", old, *args).exit_code == 0
    (hooks / "report").write_text("")
    box = {}
    worker = threading.Thread(target=lambda: box.setdefault("r", invoke("deploy", new, *args)))
    worker.start()
    deadline = time.monotonic() + 30
    while not (hooks / "report.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (hooks / "report.pid").exists(), "the agent never reached its report hold"
    assert not (sshd.home / ".edgelstm" / "activating.json").exists()  # the check passed: the journal is gone
    os.kill(int((hooks / "report.pid").read_text()), signal.SIGKILL)
    (hooks / "report").unlink()
    worker.join(60)
    r = box["r"]
    assert r.exit_code == 0, r.output
    assert "the agent was lost after its health check passed" in r.output
    assert links(sshd.home) == (sha(new), sha(old))


def test_health_check_that_fails_here_stops_before_any_host(tmp_path, ssh_home, sshd):
    trust(ssh_home, sshd)
    m = model_file(tmp_path / "m.bin")
    r = invoke(
        "deploy",
        m,
        "--host",
        sshd.spec,
        "--no-install-runtime",
        "--health-cmd",
        "{python} -c 'raise SystemExit(\"no such sensor\")' {model}",
    )
    assert r.exit_code == 2
    assert last_line(r) == f"Error: {m}: the health check fails here too, so it cannot judge the device: no such sensor"
    assert not (sshd.home / ".edgelstm").exists()


def test_model_the_device_cannot_load_is_refused_before_upload(tmp_path, ssh_home, sshd):
    trust(ssh_home, sshd)
    m = model_file(tmp_path / "m.onnx")
    r = invoke("deploy", m, "--host", sshd.spec, "--no-install-runtime", "--health-cmd", HEALTH)
    assert r.exit_code == 1
    assert last_line(r) == (
        f"Error: {sshd.spec}: the device cannot load a .onnx model: none of onnxruntime is "
        "installed there (and --no-install-runtime was given)"
    )
    assert not (sshd.home / ".edgelstm" / "models" / sha(m)).exists()


def test_model_that_breaks_the_target_is_refused_before_upload(tmp_path, ssh_home, sshd, step_models):
    good, _ = step_models  # a float step model: Coral runs int8 only
    trust(ssh_home, sshd)
    r = invoke("deploy", good, "--host", sshd.spec, "--target", "coral-edgetpu", "--no-install-runtime")
    assert r.exit_code == 1, r.output
    line = last_line(r)
    assert line.startswith(f"Error: {sshd.spec}: {good.name} does not fit target coral-edgetpu: "), line
    assert "quantization float is not run by coral-edgetpu" in line
    assert not (sshd.home / ".edgelstm" / "models").exists() or not any((sshd.home / ".edgelstm" / "models").iterdir())


def test_fleet_deploys_in_parallel_with_a_row_per_host(tmp_path, ssh_home, sshd, ssh_client_key):
    from sshd import free_port, start_sshd

    second = start_sshd(tmp_path / "second", ssh_client_key.with_suffix(".pub"), "127.0.0.1", free_port())
    try:
        trust(ssh_home, sshd)
        trust(ssh_home, second)
        m = model_file(tmp_path / "m.bin")
        r = invoke(
            "deploy",
            m,
            "--host",
            sshd.spec,
            "--host",
            second.spec,
            "--host",
            "root@127.0.0.1:1",
            "--no-install-runtime",
            "--health-cmd",
            HEALTH,
            "--parallel",
            "2",
            "--timeout",
            "5",
        )
        assert r.exit_code == 1
        rows = r.stdout.strip().splitlines()
        assert rows[0].split()[:2] == ["HOST", "RESULT"]
        assert rows[1].split()[:2] == [sshd.spec, "ok"] and rows[2].split()[:2] == [second.spec, "ok"]
        assert rows[3].split()[:2] == ["root@127.0.0.1:1", "FAILED"] and "cannot connect" in rows[3]
        assert last_line(r) == "Error: 1 of 3 hosts failed: root@127.0.0.1:1"
        assert links(sshd.home)[0] == links(second.home)[0] == sha(m)
    finally:
        second.stop()


def test_remote_stream_lines_live_and_ctrl_c_stops_the_remote_process(ssh_home, sshd):
    from edgelstm.deploy.ssh import Connection, HostSpec

    trust(ssh_home, sshd)
    marker = f"marker-{uuid.uuid4().hex}"
    script = "import json, time\nfor i in range(100000):\n print(json.dumps({'i': i}))\n time.sleep(0.05)\n"
    lines: list[dict] = []

    def on_line(line: str) -> None:
        lines.append(json.loads(line))
        if len(lines) == 3:
            raise KeyboardInterrupt

    with Connection(HostSpec.parse(sshd.spec)) as conn:
        with pytest.raises(KeyboardInterrupt):
            conn.stream(f"python3 -u -c {shlex.quote(script)} {marker}", on_line)
    assert lines == [{"i": 0}, {"i": 1}, {"i": 2}]
    time.sleep(0.5)
    running = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline_has(p, marker)]
    assert running == []


def _cmdline_has(proc: Path, marker: str) -> bool:
    try:
        return marker in (proc / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def test_service_unit_content():
    from edgelstm.deploy.service import unit_text

    text = unit_text(
        "/home/pi/.edgelstm/venv/bin/python",
        "/home/pi/.edgelstm/current/model.tflite",
        ["udp://0.0.0.0:5005", "--every", "50%"],
    )
    assert text.splitlines() == [
        "[Unit]",
        "Description=edgelstm streaming runner",
        "After=network-online.target",
        "",
        "[Service]",
        "Environment=PYTHONUNBUFFERED=1",
        "ExecStart=/home/pi/.edgelstm/venv/bin/python -u -m edgelstm.runtime /home/pi/.edgelstm/current/model.tflite "
        "udp://0.0.0.0:5005 --every 50%%",
        "Restart=on-failure",
        "RestartSec=2",
        "",
        "[Install]",
        "WantedBy=default.target",
    ]


@pytest.mark.parametrize("sndbuf", [None, 4096], ids=["default-sndbuf", "small-sndbuf"])
def test_link_cut_mid_upload_keeps_previous_model_and_retry_succeeds(
    tmp_path, ssh_home, netns_device, sndbuf, monkeypatch
):
    """Where the dead link shows depends on the client's TCP send buffer: with a large one SFTP first runs out of
    SSH window (a channel read times out); with a small one paramiko's writer retries a full socket, which only a
    watchdog closing the transport ends (before it, one CI machine waited 938 s for the kernel to give up)."""
    import socket

    import paramiko.client

    from edgelstm.deploy.deploy import DeployOptions, HealthCheck, deploy
    from edgelstm.deploy.ssh import Connection, ConnectOptions, HostSpec

    class SmallBufferSocket(socket.socket):  # a real socket, only its send buffer is as small as some machines'
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)

    if sndbuf:
        monkeypatch.setattr(paramiko.client.socket, "socket", SmallBufferSocket)
    ns, server = netns_device
    trust(ssh_home, server)
    host = server.spec
    small, big = model_file(tmp_path / "v1.bin", seed=1), model_file(tmp_path / "v2.bin", size=24_000_000, seed=2)
    cut = {"at": None}

    def progress(h: str, sent: int, total: int) -> None:
        if cut["at"] is None and sent >= total // 2:
            cut["at"] = sent / total
            ns.link(False)

    opts = DeployOptions(
        install_runtime=False, health=HealthCheck(command=HEALTH), connect=ConnectOptions(timeout=3, keepalive=1)
    )
    (first,) = deploy(small, [host], opts)
    assert first.ok, first.message

    opts.progress = progress
    t = time.perf_counter()
    (failed,) = deploy(big, [host], opts)
    elapsed = time.perf_counter() - t
    assert not failed.ok
    assert 0.5 <= cut["at"] < 0.6
    assert failed.message.startswith("connection lost while uploading (no answer to a keepalive within 3 s)")
    assert failed.message.endswith(f"the device's current model is unchanged ({sha(small)[:12]})")
    assert elapsed < 30  # a dead link ends in an error, not a hang

    ns.link(True)
    assert links(server.home) == (sha(small), None)
    with Connection(HostSpec.parse(host)) as conn:  # the previous model still runs
        rc, out, _ = conn.run(
            HEALTH.replace("{python}", "python3").replace("{model}", f"{server.home}/.edgelstm/current/model.bin")
        )
    assert rc == 0 and json.loads(out) == HealthCheck(command=HEALTH).local(small)

    opts.progress = None
    (retry,) = deploy(big, [host], opts)
    assert retry.ok, retry.message
    assert links(server.home) == (sha(big), sha(small))
    assert not [p for p in (server.home / ".edgelstm" / "models").iterdir() if p.name.startswith(".tmp-")]
    print(
        f"\nveth upload: {retry.uploaded_bytes / 1e6:.1f} MB in {retry.upload_seconds:.2f} s = "
        f"{retry.throughput_mb_s:.1f} MB/s; deploy {retry.seconds:.2f} s; failure reported after {elapsed:.1f} s"
    )


@pytest.fixture(scope="module")
def step_models(tmp_path_factory):
    """Two float step models with edgelstm metadata (different random weights): 3 channels, 4 classes."""
    from conftest import _tiny_model

    from edgelstm.export.tflite import step_tflite
    from edgelstm.models.step import build_step_model

    out = tmp_path_factory.mktemp("deploy-models")
    paths = []
    for seed in (0, 1):
        cfg, model = _tiny_model(seed=seed, arch="lstm", window=20, layers=1)
        cfg.labels, cfg.channels, cfg.sample_rate = ["a", "b", "c", "d"], ["ax", "ay", "az"], 50.0
        paths.append(out / f"step{seed}.tflite")
        paths[-1].write_bytes(step_tflite(build_step_model(cfg, model)))
    return paths


def test_real_model_installs_runtime_health_checks_streams_and_benches(tmp_path, ssh_home, sshd, step_models):
    good, other = step_models
    trust(ssh_home, sshd)
    r = invoke("deploy", good, "--host", sshd.spec)
    assert r.exit_code == 0, r.output
    assert "installing the edgelstm 0.1.0 runtime" in r.stderr
    passed = [ln for ln in r.stderr.splitlines() if "health check passed" in ln]
    assert len(passed) == 1 and "(200 numbers, max |Δ| 0)" in passed[0]  # 40 outputs: t and 4 scores each
    assert (sshd.home / ".edgelstm" / "venv" / "bin" / "python").exists()

    r = invoke("remote", "status", "--host", sshd.spec)
    assert r.exit_code == 0, r.output
    assert "runtime   edgelstm 0.1.0; interpreters: ai_edge_litert" in r.stdout

    rec = sshd.home / "rec.csv"  # a recording that is on the device
    rec.write_text("".join(f"{np_sin(i)},{np_sin(i + 1)},{np_sin(i + 2)}\n" for i in range(30)))
    r = invoke("remote", "run", "--host", sshd.spec, f"file:{rec}", "--no-default-delegates")
    assert r.exit_code == 0, r.output
    local = invoke("run", good, f"file:{rec}", "--no-default-delegates")
    assert local.exit_code == 0, local.output
    got, want = [json.loads(x) for x in r.stdout.splitlines()], [json.loads(x) for x in local.stdout.splitlines()]
    assert len(got) == 30 and [g["label"] for g in got] == [w["label"] for w in want]
    assert max(abs(a - b) for g, w in zip(got, want) for a, b in zip(g["scores"], w["scores"])) <= 1e-5

    r = invoke("remote", "bench", "--host", sshd.spec, "--count", "200", "--warmup", "10")
    assert r.exit_code == 0, r.output
    assert "runtime: litert" in r.stdout and "count=200" in r.stdout

    r = invoke("remote", "run", "--host", sshd.spec, "--service", "udp://127.0.0.1:5005", "--every", "5")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"{sshd.spec}: ~/.config/systemd/user/edgelstm.service ")
    unit = (sshd.home / ".config" / "systemd" / "user" / "edgelstm.service").read_text()
    venv_python = sshd.home / ".edgelstm" / "venv" / "bin" / "python"
    assert (
        f"ExecStart={venv_python} -u -m edgelstm.runtime {sshd.home}/.edgelstm/current/model.tflite "
        "udp://127.0.0.1:5005 --every 5\n"
    ) in unit

    # A model whose outputs differ from the reference (the first model's): rolled back, exit 1.
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps([json.loads(x) for x in local.stdout.splitlines()][:1]))
    r = invoke(
        "deploy",
        other,
        "--host",
        sshd.spec,
        "--health-cmd",
        "{python} -m edgelstm.runtime {model} file:" + str(rec) + " --max-samples 1 --no-default-delegates",
        "--health-expect",
        expected,
    )
    assert r.exit_code == 1
    assert "health check failed: outputs differ from the local ones" in last_line(r)
    assert last_line(r).endswith(f"rolled back to {sha(good)[:12]}")
    assert links(sshd.home) == (sha(good), None)


def test_a_rocket_model_deploys_with_its_numpy_runtime_and_streams_as_here(tmp_path, ssh_home, sshd):
    """A .rocket file (no interpreter: numpy): the runtime is installed, the health check passes, and the device
    streams a recording to the same labels and scores as this machine."""
    from test_rocket import waves_npz

    train, seqs = waves_npz(tmp_path / "train.npz")
    m = tmp_path / "m"
    assert invoke("train", train, "--arch", "rocket", "-o", m).exit_code == 0
    assert invoke("quantize", m, "--no-report", "-o", m / "export").exit_code == 0
    model = m / "export" / "step.int8.rocket"
    trust(ssh_home, sshd)
    r = invoke("deploy", model, "--host", sshd.spec, "--target", "raspberrypi4-aarch64")
    assert r.exit_code == 0, r.output
    assert "health check passed" in r.stderr
    assert (sshd.home / ".edgelstm" / "current" / "model.rocket").read_bytes() == model.read_bytes()
    rec = sshd.home / "rec.csv"
    rec.write_text("".join(",".join(f"{v:.6g}" for v in row) + "\n" for row in seqs[0]))
    r = invoke("remote", "run", "--host", sshd.spec, f"file:{rec}")
    assert r.exit_code == 0, r.output
    local = invoke("run", model, f"file:{rec}")
    assert local.exit_code == 0, local.output
    got, want = [json.loads(x) for x in r.stdout.splitlines()], [json.loads(x) for x in local.stdout.splitlines()]
    assert len(got) == len(seqs[0]) and got == want


def np_sin(i: int) -> str:
    import math

    return f"{math.sin(0.3 * i):.5f}"


def test_a_link_that_dies_before_exec_is_answered_ends_in_an_error_not_a_hang(ssh_home, netns_device, monkeypatch):
    """paramiko's exec_command waits for the server's reply with no timeout: the 50-deploy torture test once hung
    there for good. The link goes down right after the channel opened, before the command is sent."""
    import paramiko

    from edgelstm.deploy.ssh import Connection, ConnectOptions, HostSpec
    from edgelstm.errors import DeployError

    ns, server = netns_device
    trust(ssh_home, server)
    real = paramiko.Channel.exec_command

    def cut_then_exec(chan, command):
        ns.link(False)
        return real(chan, command)

    with Connection(HostSpec.parse(server.spec), ConnectOptions(timeout=3, keepalive=1)) as conn:
        assert conn.run("echo up")[1] == "up\n"
        monkeypatch.setattr(paramiko.Channel, "exec_command", cut_then_exec)
        t = time.monotonic()
        with pytest.raises(DeployError) as err:
            conn.run("echo never")
        elapsed = time.monotonic() - t
    assert str(err.value) == "connection lost while starting a command (no answer to a keepalive within 3 s)"
    assert elapsed < 15


def test_stream_over_a_link_that_dies_ends_in_an_error_not_a_hang(ssh_home, netns_device):
    from edgelstm.deploy.ssh import Connection, ConnectOptions, HostSpec
    from edgelstm.errors import DeployError

    ns, server = netns_device
    trust(ssh_home, server)
    script = "import time\nfor i in range(100000):\n print(i)\n time.sleep(0.2)\n"
    lines: list[str] = []

    def on_line(line: str) -> None:
        lines.append(line)
        if len(lines) == 2:
            ns.link(False)

    with Connection(HostSpec.parse(server.spec), ConnectOptions(timeout=3, keepalive=1)) as conn:
        t = time.monotonic()
        with pytest.raises(DeployError) as err:
            conn.stream(f"python3 -u -c {shlex.quote(script)}", on_line)
        elapsed = time.monotonic() - t
    assert str(err.value) == "connection lost while streaming (no answer to a keepalive within 3 s)"
    assert lines[:2] == ["0", "1"]
    assert elapsed < 15
