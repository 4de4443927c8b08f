"""End-to-end on the aarch64 device of bench/aarch64_device.sh: deploy an int8 step model, stream, compare.

    sudo bench/aarch64_device.sh up && python bench/aarch64_e2e.py && sudo bench/aarch64_device.sh down

Checks: the device says `uname -m` = aarch64; the deploy (upload, SHA-256, switch, health check run by the
device's runtime under qemu) passes; `edgelstm remote run` streams outputs equal to the local ones.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner

STATE = Path(os.environ.get("EDGELSTM_ARM64_ROOTFS", "/var/tmp/edgelstm-arm64") + ".state")
ROOTFS = Path(os.environ.get("EDGELSTM_ARM64_ROOTFS", "/var/tmp/edgelstm-arm64"))
HOST = "root@10.77.254.2"


def int8_step_model(out: Path) -> Path:
    """A 1x32 LSTM step model (random weights), quantized to full int8 with a representative set."""
    import numpy as np

    from edgelstm.export.tflite import step_tflite
    from edgelstm.models.build import build_model
    from edgelstm.models.config import ModelConfig
    from edgelstm.models.step import build_step_model

    cfg = ModelConfig(arch="lstm", task="classify", units=32, layers=1, window=50, n_features=6, n_outputs=4, stride=25)
    cfg.norm_mean, cfg.norm_std = [0.0] * 6, [1.0] * 6
    cfg.labels, cfg.channels, cfg.sample_rate = ["idle", "walk", "run", "stairs"], [f"c{i}" for i in range(6)], 50.0
    model = build_model(cfg, batch_size=None)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    step = build_step_model(cfg, model)

    def representative():
        for _ in range(200):
            feed = {"x": rng.normal(0, 1, (1, 6)).astype(np.float32)}
            feed.update({n: rng.uniform(-1, 1, (1, u)).astype(np.float32) for n, u in step.states})
            yield feed

    out.write_bytes(step_tflite(step, "int8", representative))
    return out


def main() -> int:
    from edgelstm.cli import main as cli
    from edgelstm.deploy.deploy import DeployOptions, HealthCheck, deploy
    from edgelstm.deploy.device import Device
    from edgelstm.deploy.ssh import Connection, ConnectOptions, HostSpec

    home = Path(tempfile.mkdtemp(prefix="edgelstm-arm64-client-"))
    (home / ".ssh").mkdir(mode=0o700)
    shutil.copy(STATE / "id_ed25519", home / ".ssh" / "id_ed25519")
    shutil.copy(STATE / "known_hosts", home / ".ssh" / "known_hosts")
    os.environ["HOME"] = str(home)
    os.environ.pop("SSH_AUTH_SOCK", None)

    model = int8_step_model(home / "lstm32_int8.tflite")
    print(f"model: {model.name}, {model.stat().st_size} bytes")
    opts = DeployOptions(
        install_runtime=False,
        health=HealthCheck(),
        connect=ConnectOptions(timeout=60),
        notify=lambda h, m: print(f"{h}: {m}", flush=True),
    )
    t = time.perf_counter()
    (result,) = deploy(model, [HOST], opts)
    print(f"deploy: {'ok' if result.ok else 'FAILED'} in {time.perf_counter() - t:.1f} s: {result.message}")
    if not result.ok:
        return 1
    with Connection(HostSpec.parse(HOST), ConnectOptions(timeout=60)) as conn:
        rc, arch, _ = conn.run("uname -m")
        st = Device(conn).status()
    print(f"device: uname -m = {arch.strip()}, Python {st.python}, runtime {st.runtime_version}, {st.interpreters()}")
    assert arch.strip() == "aarch64", arch

    rec = "".join(",".join(f"{math.sin(0.21 * i + j):.5f}" for j in range(6)) + "\n" for i in range(100))
    (ROOTFS / "root" / "rec.csv").write_text(rec)
    local_rec = home / "rec.csv"
    local_rec.write_text(rec)
    t = time.perf_counter()
    remote = CliRunner().invoke(cli, ["remote", "run", "--host", HOST, "--timeout", "60", "file:/root/rec.csv"])
    remote_s = time.perf_counter() - t
    local = CliRunner().invoke(cli, ["run", str(model), f"file:{local_rec}", "--no-default-delegates"])
    assert remote.exit_code == 0, remote.output
    assert local.exit_code == 0, local.output
    got = [json.loads(x) for x in remote.stdout.splitlines()]
    want = [json.loads(x) for x in local.stdout.splitlines()]
    agree = sum(g["label"] == w["label"] for g, w in zip(got, want)) / len(want)
    worst = max(abs(a - b) for g, w in zip(got, want) for a, b in zip(g["scores"], w["scores"]))
    print(
        f"remote run: {len(got)} lines streamed in {remote_s:.1f} s; labels agree {agree:.1%} with the local run, "
        f"max |Δ score| {worst:.3g}"
    )
    assert len(got) == len(want) == 100 and agree == 1.0 and worst <= 0.02
    print("aarch64 e2e: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
