"""What the deployer does on one device, each step one call of the stdlib agent (agent.py) over SSH."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import DeployError
from .ssh import Connection, quote

AGENT = (Path(__file__).with_name("agent.py")).read_bytes()
DEFAULT_ROOT = "~/.edgelstm"


@dataclass
class Status:
    """The device as the agent sees it (see agent.status)."""

    root: str
    arch: str
    python: str
    free_bytes: int
    current: str | None
    previous: str | None
    versions: list[dict]
    system: dict
    venv: dict | None
    venv_python: str

    @property
    def runtime_version(self) -> str | None:
        return (self.venv or {}).get("edgelstm")

    def interpreters(self) -> dict:
        """Model interpreters importable on the device, venv first: {module: version}."""
        found = dict(self.system)
        found.update(self.venv or {})
        return {k: v for k, v in found.items() if k in ("ai_edge_litert", "tflite_runtime", "onnxruntime")}

    def version(self, sha: str | None) -> dict | None:
        return next((v for v in self.versions if v["sha256"] == sha), None)

    def model_path(self, sha: str | None = None) -> str | None:
        """Absolute path of a version's model file on the device (default: current)."""
        v = self.version(sha or self.current)
        return f"{self.root}/models/{v['sha256']}/{v['file']}" if v else None


class Device:
    """A connected device with the edgelstm layout under `root`."""

    def __init__(self, conn: Connection, root: str = DEFAULT_ROOT) -> None:
        self.conn = conn
        self.root = root

    def agent(self, *args: str, timeout: float | None = None) -> dict:
        rc, out, err = self.conn.run(quote("python3", "-", self.root, *args), stdin=AGENT, timeout=timeout)
        if rc == 127:
            raise DeployError("the device has no python3 (install it there first)")
        if rc != 0:
            last = (err.strip().splitlines() or [f"exit code {rc}"])[-1]
            raise DeployError(f"device step '{args[0]}' failed: {last}")
        return json.loads(out.strip().splitlines()[-1])

    def status(self) -> Status:
        return Status(**self.agent("status", timeout=max(self.conn.opts.timeout, 120)))

    def set_links(self, current: str | None, previous: str | None) -> dict:
        return self.agent("setlinks", current or "-", previous or "-")

    def prune(self, keep: int) -> list[str]:
        return self.agent("prune", str(keep))["removed"]
