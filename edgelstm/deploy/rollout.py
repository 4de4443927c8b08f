"""Staged rollouts: deploy in batches, each gated on its failures; a batch over the threshold is rolled back whole
and the rollout stops, later batches untouched.

The stage sizes and the threshold follow Ansible's `serial` and `max_fail_percentage` exactly, so the CLI and the
sample playbook (ansible/deploy.yml) cut a fleet the same way: each entry of `1,10%,50%,100%` is the size of one
batch (a count, or a share of ALL hosts rounded down, at least 1), the last entry repeats until every host had
its turn, and a batch stops the rollout when failed / size > max-fail.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from .._deps import require
from ..errors import DeployError, EdgeLSTMError, InputError
from .deploy import DeployOptions, DeployResult, prepare, run_hosts, short
from .device import Device
from .ssh import Connection, HostSpec


def parse_rollout(text: str) -> list[tuple[float, bool]]:
    """`1,10%,50%,100%` -> [(1, False), (10.0, True), ...]: (value, is_percent)."""
    out = []
    for part in text.split(","):
        part = part.strip()
        try:
            value = float(part[:-1]) if part.endswith("%") else int(part)
        except ValueError:
            raise InputError(
                f"bad --rollout '{text}': each stage is a count or a percentage, as in 1,10%,50%,100%"
            ) from None
        if not 0 < value <= (100 if part.endswith("%") else float("inf")):
            raise InputError(f"bad --rollout stage '{part}': counts are >= 1, percentages in (0, 100]")
        out.append((value, part.endswith("%")))
    return out


def stage_sizes(n_hosts: int, stages: list[tuple[float, bool]]) -> list[int]:
    """Batch sizes that cover `n_hosts`, as Ansible's `serial` makes them (the last entry repeats)."""
    sizes: list[int] = []
    left, i = n_hosts, 0
    while left > 0:
        value, pct = stages[min(i, len(stages) - 1)]
        size = max(1, int(n_hosts * value / 100)) if pct else int(value)
        sizes.append(min(size, left))
        left -= sizes[-1]
        i += 1
    return sizes


def parse_max_fail(text: str) -> tuple[float, bool]:
    """`5%` -> (5.0, True), `2` -> (2, False): a share of the stage or a count of hosts that may fail."""
    t = text.strip()
    try:
        value = float(t[:-1]) if t.endswith("%") else int(t)
    except ValueError:
        raise InputError(f"bad --max-fail '{text}': a count (2) or a percentage of the stage (5%)") from None
    if value < 0 or (t.endswith("%") and value > 100):
        raise InputError(f"bad --max-fail '{text}': counts are >= 0, percentages in [0, 100]")
    return value, t.endswith("%")


def stage_exceeds(failed: int, size: int, max_fail: tuple[float, bool]) -> bool:
    """True when this many failures stop the rollout: strictly more than the threshold, like Ansible's."""
    value, pct = max_fail
    return failed * 100 > value * size if pct else failed > value


@dataclass
class HostOutcome:
    stage: int
    name: str
    spec: str
    state: str  # ok | FAILED | ROLLED BACK | not started
    result: DeployResult | None = None
    detail: str = ""


@dataclass
class StageReport:
    index: int
    size: int
    failed: int
    seconds: float
    stopped: bool


@dataclass
class RolloutReport:
    sha256: str
    hosts: list[HostOutcome] = field(default_factory=list)
    stages: list[StageReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(h.state == "ok" for h in self.hosts)


def rollback_host(spec: str, result: DeployResult, opts: DeployOptions) -> str:
    """Undo a healthy host's switch because its stage failed elsewhere (the agent's idempotent `rollback`)."""
    with Connection(HostSpec.parse(spec), opts.connect) as conn:
        done = Device(conn, opts.root).agent(
            "rollback", result.sha256, result.old_current or "-", result.old_previous or "-"
        )
    if not done["changed"]:
        return f"left on {short(done['current'])}: not on {short(result.sha256)} any more"
    back = short(result.old_current) if result.old_current else "no model (current removed)"
    return f"healthy, rolled back to {back} with its stage"


def rollout(
    model: Path,
    hosts: list[tuple[str, str]],
    opts: DeployOptions,
    stages: list[tuple[float, bool]],
    max_fail: tuple[float, bool],
) -> RolloutReport:
    """Deploy to `hosts` ((name, spec) pairs) stage by stage; stop at the first stage over `max_fail`."""
    require("paramiko")  # before any host: a missing extra is one error, not one failure per host
    model, sha, prepared, expected = prepare(model, [spec for _, spec in hosts], opts)
    report = RolloutReport(sha256=sha)
    start = 0
    for index, size in enumerate(stage_sizes(len(hosts), stages), 1):
        batch = hosts[start : start + size]
        start += size
        opts.notify("rollout", f"stage {index}: {size} host(s): {', '.join(n for n, _ in batch)}")
        t = time.perf_counter()
        results = run_hosts(model, sha, expected, [spec for _, spec in batch], prepared)
        failed = sum(not r.ok for r in results)
        stopped = stage_exceeds(failed, size, max_fail)
        for (name, spec), r in zip(batch, results):
            outcome = HostOutcome(index, name, spec, "ok" if r.ok else "FAILED", r, r.message)
            if stopped and r.ok and r.changed:
                try:
                    outcome.detail = rollback_host(spec, r, replace(prepared, connect=opts.connect))
                    outcome.state = "ROLLED BACK"
                except EdgeLSTMError as ex:
                    outcome.state, outcome.detail = "FAILED", f"rollback failed: {ex}"
            elif stopped and r.ok:  # it ran this version before the rollout began: nothing of ours to undo
                outcome.detail = f"already on {short(sha)} before this rollout: left there"
            report.hosts.append(outcome)
        report.stages.append(StageReport(index, size, failed, time.perf_counter() - t, stopped))
        limit = f"{max_fail[0]:g}%" if max_fail[1] else f"{max_fail[0]:g} host(s)"
        opts.notify(
            "rollout", f"stage {index}: {failed} of {size} failed (max {limit}) in {report.stages[-1].seconds:.1f} s"
        )
        if stopped:
            for name, spec in hosts[start:]:
                report.hosts.append(HostOutcome(0, name, spec, "not started", None, "the rollout stopped before it"))
            break
    return report


def format_rollout(report: RolloutReport) -> str:
    rows = [("STAGE", "HOST", "RESULT", "SECONDS", "DETAIL")]
    for h in report.hosts:
        secs = f"{h.result.seconds:.1f}" if h.result else "-"
        rows.append((str(h.stage or "-"), h.name, h.state, secs, h.detail))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
    for s in report.stages:
        verdict = "STOPPED the rollout" if s.stopped else "passed"
        lines.append(f"stage {s.index}: {s.size} host(s), {s.failed} failed, {s.seconds:.1f} s: {verdict}")
    return "\n".join(lines)


def rollout_error(report: RolloutReport) -> DeployError | None:
    stopped = next((s for s in report.stages if s.stopped), None)
    if stopped:
        untouched = sum(h.state == "not started" for h in report.hosts)
        return DeployError(
            f"rollout stopped at stage {stopped.index}: {stopped.failed} of {stopped.size} host(s) failed; that "
            f"stage rolled back, {untouched} host(s) in later stages not started"
        )
    failed = [h.name for h in report.hosts if h.state != "ok"]
    if failed:
        return DeployError(f"{len(failed)} of {len(report.hosts)} hosts failed: {', '.join(failed)}")
    return None
