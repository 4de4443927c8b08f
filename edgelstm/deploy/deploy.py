"""`edgelstm deploy`: probe, check, upload, verify, switch, health-check, roll back — per host, hosts in parallel."""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import __version__
from .._deps import require
from ..capabilities import why_not
from ..errors import DeployError, EdgeLSTMError, InputError
from . import agent as device_agent
from .device import DEFAULT_ROOT, Device, Status
from .service import UNIT_NAME
from .ssh import Connection, ConnectOptions, HostSpec, quote
from .wheel import build_wheel

HEALTH_SCRIPT = Path(__file__).with_name("healthcheck.py").read_bytes()
# a .rocket model needs no interpreter: numpy, which the edgelstm runtime itself needs
INTERPRETERS = {".tflite": ("ai_edge_litert", "tflite_runtime"), ".onnx": ("onnxruntime",)}
# ai-edge-litert (the `device` extra's interpreter) publishes wheels for these machines only.
LITERT_ARCHES = ("x86_64", "aarch64")


def short(sha: str | None) -> str:
    return sha[:12] if sha else "none"


def size_text(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class HealthCheck:
    """Run the model on the device and compare its numbers with the same run here.

    Modes: `command` — a shell line with `{python}` and `{model}` placeholders printing JSON (the numbers on its
    last line are compared); else, for a model carrying edgelstm metadata, the runtime itself (`python -m
    edgelstm.runtime MODEL -`) on a fixed recording fed through stdin, every output line compared; else
    healthcheck.py (a fixed input straight through the interpreter). `expected` replaces the local run.
    """

    command: str | None = None
    # None: 1e-4 for float models; 0.02 for integer-quantized ones, whose kernels differ by about one
    # quantization step between runtimes (LiteRT 2.3 here vs tflite-runtime 2.14 on aarch64: 0.008-0.012).
    atol: float | None = None
    expected: list[float] | None = None
    runtime: bool = False
    stdin: bytes | None = None

    def prepare(self, model: Path) -> HealthCheck:
        """This check as it applies to `model` (a new object: the options stay as the user gave them). The runtime
        mode needs the model's metadata to make its input."""
        if self.command is not None:
            return self
        try:
            from ..modelfile.read import read_metadata

            meta = read_metadata(model)
        except (ImportError, EdgeLSTMError):
            if model.suffix.lower() not in INTERPRETERS:
                raise InputError(
                    f"{model}: no built-in health check for a '{model.suffix}' file; give --health-cmd"
                ) from None
            return replace(self, runtime=False, stdin=None)
        atol = self.atol
        if atol is None and meta.get("quantization") in ("int8", "int16x8"):
            atol = 0.02
        return replace(self, runtime=True, stdin=known_recording(meta).encode(), atol=atol)

    def _argv(self, python: str, model: str) -> list[str]:
        if self.runtime:
            return [python, "-u", "-m", "edgelstm.runtime", model, "-", "--format", "json", "--no-default-delegates"]
        return [python, "-", model]

    def local(self, model: Path) -> list[float]:
        if self.expected is not None:
            return self.expected
        if self.command is None:
            data = self.stdin if self.runtime else HEALTH_SCRIPT
            p = subprocess.run(self._argv(sys.executable, str(model)), input=data, capture_output=True, timeout=300)
        else:
            p = subprocess.run(self.line(sys.executable, str(model)), shell=True, capture_output=True, timeout=300)
        if p.returncode != 0:
            last = (p.stderr.decode(errors="replace").strip().splitlines() or [f"exit code {p.returncode}"])[-1]
            raise InputError(f"{model}: the health check fails here too, so it cannot judge the device: {last}")
        return numbers(p.stdout.decode(), every_line=self.runtime)

    def plan(self, expected: list[float]) -> dict:
        """The check as data (models/<sha>/health.json on the device), which the agent's `activate` runs there and
        compares with `expected`: the same file whether `edgelstm deploy` or the Ansible role wrote it."""
        data = self.stdin if self.runtime else HEALTH_SCRIPT
        return {
            "command": self.command,
            "argv": None if self.command is not None else self._argv("{python}", "{model}"),
            "stdin": data.decode() if self.command is None else None,
            "every_line": self.runtime,
            "expected": expected,
            "atol": 1e-4 if self.atol is None else self.atol,
            "timeout": 300,
        }

    def line(self, python: str, model: str) -> str:
        return self.command.replace("{python}", shlex.quote(python)).replace("{model}", shlex.quote(model))

    def compare(self, expected: list[float], got: list[float]) -> float:
        try:
            return device_agent.compare(expected, got, 1e-4 if self.atol is None else self.atol)
        except ValueError as ex:
            raise DeployError(str(ex)) from None


def known_recording(meta: dict) -> str:
    """A fixed recording in the model's raw units: two windows of phase-shifted sines around its normalization."""
    import math

    n = int(meta["n_features"])
    norm = meta.get("normalization") or {}
    mean, std = norm.get("mean") or [0.0] * n, norm.get("std") or [1.0] * n
    rows = max(2 * int(meta.get("window") or 20), 40)
    return "".join(
        ",".join(f"{mean[j] + std[j] * math.sin(0.37 * i + j):.6f}" for j in range(n)) + "\n" for i in range(rows)
    )


def numbers(text: str, every_line: bool = False) -> list[float]:
    """All numbers in the JSON on the last non-empty line of `text` (or on every line), flattened in order (the
    device agent's reader, so both ends read a check's output alike)."""
    try:
        return device_agent.numbers(text, every_line)
    except ValueError as ex:
        raise DeployError(str(ex)) from None


@dataclass
class DeployOptions:
    keep: int = 3
    install_runtime: bool = True
    reinstall_runtime: bool = False
    wheel: Path | None = None
    health: HealthCheck = field(default_factory=HealthCheck)
    target: str | None = None
    root: str = DEFAULT_ROOT
    connect: ConnectOptions = field(default_factory=ConnectOptions)
    parallel: int = 4
    # notify(host, message) for progress lines; progress(host, sent, total) during the upload.
    notify: Callable[[str, str], None] = field(default=lambda host, msg: None)
    progress: Callable[[str, int, int], None] | None = None


@dataclass
class DeployResult:
    host: str
    ok: bool
    message: str
    sha256: str = ""
    seconds: float = 0.0
    uploaded_bytes: int = 0
    upload_seconds: float = 0.0
    arch: str = ""
    runtime: str = ""
    # What the links were before, so a staged rollout can undo a healthy host of a failed stage (rollout.py).
    old_current: str | None = None
    old_previous: str | None = None
    changed: bool = False

    @property
    def throughput_mb_s(self) -> float:
        return self.uploaded_bytes / self.upload_seconds / 1e6 if self.upload_seconds else 0.0


def check_model(model: Path, st: Status, will_install: bool, target: str | None) -> str | None:
    """Refuse, before uploading, a model this device cannot load or store; return a note for the user, if any."""
    note = _check_target(model, target, st) if target else None
    size = model.stat().st_size
    need = size + 20_000_000 + (400_000_000 if will_install else 0)
    if st.free_bytes < need:
        raise DeployError(
            f"not enough disk on the device: {st.free_bytes / 1e6:.0f} MB free under {st.root}, "
            f"{need / 1e6:.0f} MB needed"
        )
    if will_install and tuple(int(p) for p in st.python.split(".")[:2]) < (3, 11):
        raise DeployError(f"the edgelstm runtime needs Python >= 3.11; the device has {st.python}")
    wanted = INTERPRETERS.get(model.suffix.lower())
    if wanted:
        have = [m for m in wanted if m in st.interpreters()]
        installable = will_install and "ai_edge_litert" in wanted and st.arch in LITERT_ARCHES
        if not have and not installable:
            why = (
                f"no ai-edge-litert wheels exist for {st.arch}"
                if st.arch not in LITERT_ARCHES
                else "and --no-install-runtime was given"
            )
            raise DeployError(
                f"the device cannot load a {model.suffix} model: none of {', '.join(wanted)} is installed there ({why})"
            )
        why = why_not(format=model.suffix.lower()[1:], mode=_quantization(model), runtime="tflite-runtime")
        if have == ["tflite_runtime"] and not installable and why:
            raise DeployError(
                f"the device has only tflite-runtime: {why}; deploy another model, or install ai-edge-litert"
            )
    return note


def _quantization(model: Path) -> str | None:
    try:
        from ..modelfile.read import read_metadata

        return read_metadata(model).get("quantization")
    except (ImportError, EdgeLSTMError):
        return None


def _check_target(model: Path, target: str, st: Status) -> str | None:
    """Refuse a model that breaks the target profile; older-runtime warnings come back as a note."""
    from ..targets.check import check_model_full
    from ..targets.profile import load_target

    violations, warnings = check_model_full(model, load_target(target))
    if violations:
        raise DeployError(f"{model.name} does not fit target {target}: " + "; ".join(violations))
    return "; ".join(warnings) or None


def install_runtime(conn: Connection, dev: Device, st: Status, wheel: Path | None) -> Status:
    """Install this package with the `device` extra into ROOT/venv on the device (the agent's `install`)."""
    wheel = wheel or build_wheel()
    remote = f"{st.root}/wheels/{wheel.name}"
    conn.run(quote("mkdir", "-p", f"{st.root}/wheels"))
    conn.upload(wheel, remote)
    done = dev.agent("install", remote, "force", timeout=900)
    if not done["ok"]:
        raise DeployError(f"installing the edgelstm runtime failed: {done['error']}")
    return dev.status()


def deploy_host(host: str, model: Path, sha: str, expected: list[float], opts: DeployOptions) -> DeployResult:
    """All steps on one host; raises DeployError with what happened to the device's current model."""
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        opts.notify(host, msg)

    result = DeployResult(host=host, ok=False, message="", sha256=sha)
    with Connection(HostSpec.parse(host), replace(opts.connect, notify=say)) as conn:
        dev = Device(conn, opts.root)
        st = dev.status()
        result.arch = st.arch
        interps = ", ".join(f"{k} {v}" for k, v in st.interpreters().items()) or "no interpreter"
        say(
            f"{st.arch}, Python {st.python}, runtime {st.runtime_version or 'not installed'} ({interps}), "
            f"{st.free_bytes / 1e6:.0f} MB free, current {short(st.current)}"
        )
        will_install = opts.install_runtime and (opts.reinstall_runtime or st.runtime_version != __version__)
        note = check_model(model, st, will_install, opts.target)
        if note:
            say(note)
        if will_install:
            say(f"installing the edgelstm {__version__} runtime into {st.root}/venv")
            st = install_runtime(conn, dev, st, opts.wheel)
        result.runtime = st.runtime_version or ""
        if opts.health.runtime and st.venv is None:
            raise DeployError(
                f"the health check runs the edgelstm runtime, which is not in {st.root}/venv: deploy "
                "without --no-install-runtime"
            )
        old_current, old_previous = st.current, st.previous
        result.old_current, result.old_previous = old_current, old_previous
        if dev.agent("has", sha)["ok"]:
            say(f"version {short(sha)} is already on the device: no upload")
        else:
            _upload(conn, dev, model, sha, result, opts, say, old_current)
        plan = json.dumps(opts.health.plan(expected)).encode()
        rc, _, err = conn.run(f"cat > {quote(f'{st.root}/models/{sha}/health.json')}", stdin=plan)
        if rc != 0:
            raise DeployError(f"writing the health check to the device failed: {err.strip()}")
        if old_current != sha:
            say(f"current: {short(old_current)} -> {short(sha)}, health check")
        done = _activate(dev, sha, opts.keep, old_current)
        if not done["ok"]:
            if old_current == sha:
                raise DeployError(f"{done['error']} (this version was already current; nothing to roll back to)")
            back = f"rolled back to {short(old_current)}" if old_current else "no previous model: current removed"
            raise DeployError(f"{done['error']}; {back}")
        result.changed = done["changed"]
        if done.get("lost"):
            say(
                "the agent was lost after its health check passed (it had removed its journal, and the device's "
                f"current model is {short(sha)})"
            )
        else:
            say(f"health check passed ({len(expected)} numbers, max |Δ| {done['worst']:.2g})")
        removed = done["removed"]
        if removed:
            say(f"pruned {len(removed)} old version(s): {', '.join(short(s) for s in removed)}")
        if old_current != sha and restart_service(conn):
            say(f"restarted the runner service ({UNIT_NAME}) on the new model")
    result.ok = True
    result.seconds = time.perf_counter() - t0
    result.message = f"current {short(sha)}"
    return result


def _activate(dev: Device, sha: str, keep: int, old_current: str | None) -> dict:
    """The agent's `activate`; if the agent dies there (killed, out of memory), a second agent call undoes its
    half-done switch (the journal in agent.recover) and the error says which model is current.

    An agent that switched to a new version removes its journal only once the health check passed, so a lost agent
    that left no journal and `sha` current had passed it: that is a deploy, not a failure (pruning is skipped)."""
    try:
        return dev.agent("activate", sha, str(keep), timeout=360)
    except DeployError as ex:
        if dev.conn.link_dead:
            raise
        try:
            now = dev.agent("recover")
        except DeployError:
            raise ex from None
        if not now["undone"] and not now.get("pending") and old_current != sha and now["current"] == sha:
            return {"ok": True, "changed": True, "removed": [], "lost": True}
        what = "its half-done switch was undone" if now["undone"] else "nothing to undo"
        raise DeployError(f"{ex} ({what}); the device's current model is {short(now['current'])}") from None


def _upload(conn, dev, model, sha, result, opts, say, old_current) -> None:
    size = model.stat().st_size
    tmp = dev.agent("prepare", sha)["tmp"]
    name = "model" + model.suffix.lower()
    sent = [0]
    shown = [-1]

    def progress(done: int, total: int) -> None:
        sent[0] = done
        pct = done * 100 // max(total, 1)
        if pct // 10 > shown[0]:
            shown[0] = pct // 10
            say(f"upload {pct}% ({size_text(done)} of {size_text(total)})")
        if opts.progress:
            opts.progress(result.host, done, total)

    t = time.perf_counter()
    try:
        conn.upload(model, f"{tmp}/{name}.part", progress=progress)
        commit = dev.agent("commit", sha, tmp, name, model.name)
    except DeployError as ex:
        raise DeployError(
            f"{ex} at {sent[0] * 100 // max(size, 1)}% of the upload; the device's current model "
            f"is unchanged ({short(old_current)})"
        ) from None
    if not commit["ok"]:
        raise DeployError(
            f"SHA-256 on the device is {short(commit['sha256'])}, expected {short(sha)}: upload "
            f"corrupted; the device's current model is unchanged ({short(old_current)})"
        )
    result.upload_seconds = time.perf_counter() - t
    result.uploaded_bytes = size
    say(
        f"uploaded {size_text(size)} in {result.upload_seconds:.2f} s ({result.throughput_mb_s:.1f} MB/s), "
        "SHA-256 verified on the device"
    )


def restart_service(conn: Connection) -> bool:
    """Restart the runner's systemd user unit if `edgelstm remote run --service` installed it; True if it ran."""
    rc, _, _ = conn.run(f'test -f "$HOME/.config/systemd/user/{UNIT_NAME}" && systemctl --user try-restart {UNIT_NAME}')
    return rc == 0


def prepare(model: Path, hosts: list[str], opts: DeployOptions) -> tuple[Path, str, DeployOptions, list[float]]:
    """Check what can be checked here before any host: (model, its SHA-256, options with the health check made
    for it, the numbers the devices must give)."""
    model = Path(model)
    if not model.is_file():
        raise InputError(f"{model}: no such model file")
    if not hosts:
        raise InputError("give at least one --host")
    for h in hosts:
        HostSpec.parse(h)
    sha = file_sha256(model)
    opts = replace(opts, health=opts.health.prepare(model))
    return model, sha, opts, opts.health.local(model)


def run_hosts(
    model: Path, sha: str, expected: list[float], hosts: list[str], opts: DeployOptions
) -> list[DeployResult]:
    """deploy_host on every host, at most `opts.parallel` at a time; one result per host, in order."""

    def one(host: str) -> DeployResult:
        t0 = time.perf_counter()
        try:
            return deploy_host(host, model, sha, expected, opts)
        except EdgeLSTMError as ex:
            return DeployResult(host=host, ok=False, message=str(ex), sha256=sha, seconds=time.perf_counter() - t0)
        except Exception as ex:  # a library error we did not foresee still becomes this host's failure
            return DeployResult(
                host=host, ok=False, message=f"{type(ex).__name__}: {ex}", sha256=sha, seconds=time.perf_counter() - t0
            )

    with ThreadPoolExecutor(max_workers=max(1, min(opts.parallel, len(hosts)))) as pool:
        return list(pool.map(one, hosts))


def deploy(model: Path, hosts: list[str], opts: DeployOptions) -> list[DeployResult]:
    """Deploy `model` to every host, at most `opts.parallel` at a time; one result per host, in order."""
    require("paramiko")  # before any host: a missing extra is one error, not one failure per host
    model, sha, opts, expected = prepare(model, hosts, opts)
    return run_hosts(model, sha, expected, hosts, opts)
