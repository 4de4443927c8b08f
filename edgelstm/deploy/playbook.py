"""The controller-side step of the Ansible role (ansible/roles/edgelstm_deploy): what `edgelstm deploy` works out
on the operator's machine before it touches a device, as files Ansible copies — nothing device-side lives here.

    python -m edgelstm.deploy.playbook plan MODEL OUTDIR [--health-cmd LINE] [--atol X]
        -> {"sha256", "file", "name", "health", "agent", "version"}: the model's SHA-256, its name on the
           device, OUTDIR/<sha12>.health.json (HealthCheck.plan: the check and the numbers this machine got), the
           path of the device agent (agent.py, which the role runs with `script`) and the runtime version.
    python -m edgelstm.deploy.playbook wheel -> {"wheel": PATH} (build_wheel: this very package).

One JSON line on stdout; an EdgeLSTMError becomes one line on stderr and its exit code.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

from .. import __version__
from ..errors import EdgeLSTMError, InputError


def plan(model: Path, out: Path, command: str | None = None, atol: float | None = None) -> dict:
    from . import agent
    from .deploy import DeployOptions, HealthCheck, file_sha256, prepare

    model = Path(model)
    if not model.is_file():
        raise InputError(f"{model}: no such model file")
    # The expected numbers depend only on the model and the check's options: computed once per playbook run, not
    # once per `serial` batch (run_once runs per batch).
    key = hashlib.sha256(json.dumps([file_sha256(model), command, atol, __version__]).encode()).hexdigest()[:16]
    health = out / f"{key}.health.json"
    if not health.is_file():
        model, _, opts, expected = prepare(model, ["localhost"], DeployOptions(health=HealthCheck(command, atol)))
        out.mkdir(parents=True, exist_ok=True)
        tmp = health.with_name(f".{health.name}.{os.getpid()}")
        tmp.write_text(json.dumps(opts.health.plan(expected)))
        tmp.replace(health)
    return {
        "sha256": file_sha256(model),
        "file": "model" + model.suffix.lower(),
        "name": model.name,
        "health": str(health),
        "agent": agent.__file__,
        "version": __version__,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgelstm.deploy.playbook")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("plan")
    p.add_argument("model", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--health-cmd")
    p.add_argument("--atol", type=float)
    sub.add_parser("wheel")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "plan":
            doc = plan(args.model, args.out, args.health_cmd, args.atol)
        else:
            from .wheel import build_wheel

            doc = {"wheel": str(build_wheel())}
    except EdgeLSTMError as ex:
        print(f"Error: {ex}", file=sys.stderr)
        return ex.exit_code
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
