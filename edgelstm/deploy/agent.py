"""Device-side helper, sent over SSH to `python3 -` on every call: stdlib only, Python >= 3.6, one JSON line out.

Layout under ROOT (default ~/.edgelstm): models/<sha256>/model.<ext> + meta.json (+ health.json, the check that
gates it), `current` and `previous` symlinks to models/<sha256>, venv/ (the edgelstm runtime), wheels/.
Usage: python3 - ROOT COMMAND [ARGS] (or python3 agent.py ROOT COMMAND [ARGS]). `edgelstm deploy` and the
Ansible role (ansible/) both drive a device through these commands only: one implementation of the device side.

An agent killed at any point leaves `current` on one intact version: `activate` journals the old links in
ROOT/activating.json before switching, and the next agent call (any command) puts them back if that agent died
before its health check passed; link temporaries of dead agents are removed then too.
Test hook, off by default: EDGELSTM_TEST_AGENT_HOLD=DIR in the agent's environment on the device (sshd's
authorized_keys `environment=`; a deploy sends no environment) makes the agent, at a named phase whose file
DIR/PHASE exists, write its pid to DIR/PHASE.pid and wait while DIR/PHASE exists (at most 60 s), so a test can
kill it there. Phases: commit (SHA-256 verified, before the rename into models/), link (temporary link made,
before the rename over), health (links switched, before the check runs), report (the check passed and the journal
is gone, before pruning and replying).
"""

import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time

RUNTIMES = ("ai_edge_litert", "tflite_runtime", "onnxruntime", "numpy", "edgelstm")
_VERSIONS = (
    "import importlib, json\n"
    "out = {}\n"
    f"for m in {RUNTIMES!r}:\n"
    "    try:\n"
    "        out[m] = getattr(importlib.import_module(m), '__version__', '?')\n"
    "    except Exception:\n"
    "        pass\n"
    "print(json.dumps(out))\n"
)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hold(phase):
    """The test hook described above; nothing unless EDGELSTM_TEST_AGENT_HOLD is set on the device."""
    where = os.environ.get("EDGELSTM_TEST_AGENT_HOLD")
    if not where or not os.path.exists(os.path.join(where, phase)):
        return
    with open(os.path.join(where, f"{phase}.pid.tmp"), "w") as f:
        f.write(str(os.getpid()))
    os.replace(os.path.join(where, f"{phase}.pid.tmp"), os.path.join(where, f"{phase}.pid"))
    deadline = time.monotonic() + 60
    while os.path.exists(os.path.join(where, phase)) and time.monotonic() < deadline:
        time.sleep(0.005)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists
        return True
    return True


def recover(root):
    """Undo what a killed agent left: an activation whose health check never passed (its journal names a dead
    pid: the links go back to what they were), and link temporaries of dead agents. The undone journal, or None."""
    for name in os.listdir(root):
        m = re.fullmatch(r"(?:current|previous|\.activating\.json)\.tmp-(\d+)", name)
        if m and not alive(int(m.group(1))):
            os.unlink(os.path.join(root, name))
    journal = os.path.join(root, "activating.json")
    try:
        with open(journal) as f:
            was = json.load(f)
    except (OSError, ValueError):
        return None
    if alive(was["pid"]):  # an activation under way in another agent
        return None
    set_link(root, "current", was["current"] or "-")
    set_link(root, "previous", was["previous"] or "-")
    os.unlink(journal)
    return was


def link_target(root, name):
    try:
        return os.path.basename(os.readlink(os.path.join(root, name)))
    except OSError:
        return None


def set_link(root, name, sha):
    """Point ROOT/name at models/sha atomically: make the new link under a temporary name, then rename over."""
    link = os.path.join(root, name)
    if sha == "-":
        if os.path.lexists(link):
            os.unlink(link)
        return
    if not os.path.isdir(os.path.join(root, "models", sha)):
        raise SystemExit("no such version on the device: " + sha)
    tmp = f"{link}.tmp-{os.getpid()}"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(os.path.join("models", sha), tmp)
    hold("link")
    os.replace(tmp, link)


def versions(root):
    out = []
    models = os.path.join(root, "models")
    for sha in os.listdir(models) if os.path.isdir(models) else []:
        meta_path = os.path.join(models, sha, "meta.json")
        if sha.startswith(".") or not os.path.isfile(meta_path):
            continue
        with open(meta_path) as f:
            meta = json.load(f)
        meta["mtime"] = os.path.getmtime(meta_path)
        out.append(meta)
    return sorted(out, key=lambda m: m["mtime"], reverse=True)


def interpreters(python):
    try:
        out = subprocess.run([python, "-c", _VERSIONS], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=120)
        return json.loads(out.stdout.decode() or "{}")
    except Exception:
        return {}


def status(root):
    venv_python = os.path.join(root, "venv", "bin", "python")
    st = os.statvfs(os.path.dirname(root) if not os.path.isdir(root) else root)
    return {
        "root": root,
        "arch": platform.machine(),
        "python": platform.python_version(),
        "free_bytes": st.f_bavail * st.f_frsize,
        "current": link_target(root, "current"),
        "previous": link_target(root, "previous"),
        "versions": versions(root),
        "system": interpreters(sys.executable),
        "venv": interpreters(venv_python) if os.path.exists(venv_python) else None,
        "venv_python": venv_python,
    }


def numbers(text, every_line=False):
    """All numbers in the JSON on the last non-empty line of `text` (or on every line), flattened in order.
    Raises ValueError with the reason for output that is not such JSON."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        raise ValueError("health check printed nothing")
    try:
        doc = [json.loads(ln) for ln in lines] if every_line else json.loads(lines[-1])
    except ValueError:
        raise ValueError("health check output is not JSON: " + lines[-1][:80]) from None
    out = []

    def walk(x):
        if isinstance(x, bool):
            return
        if isinstance(x, (int, float)):
            out.append(float(x))
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(doc)
    return out


def compare(expected, got, atol):
    """The largest |expected - got|; ValueError if the counts differ or it exceeds `atol`."""
    if len(expected) != len(got):
        raise ValueError(f"health check failed: the device gave {len(got)} numbers, expected {len(expected)}")
    worst = max((abs(a - b) for a, b in zip(expected, got)), default=0.0)
    if not worst <= atol:
        why = f"outputs differ from the local ones (max |\u0394| {worst:.3g} > {atol:g})"
        raise ValueError("health check failed: " + why)
    return worst


def health(root, sha, plan):
    """Run the check in `plan` (health.json, written by the host's HealthCheck.plan) on version `sha`; the worst
    |delta| or ValueError. `{python}` is the runtime venv's python if there is one, else this one."""
    venv_python = os.path.join(root, "venv", "bin", "python")
    python = venv_python if os.path.exists(venv_python) else sys.executable
    with open(os.path.join(root, "models", sha, "meta.json")) as f:
        model = os.path.join(root, "models", sha, json.load(f)["file"])
    data = plan.get("stdin")
    if plan.get("command") is not None:
        line = plan["command"].replace("{python}", shlex.quote(python)).replace("{model}", shlex.quote(model))
        argv, shell = line, True
    else:
        argv, shell = [a.replace("{python}", python).replace("{model}", model) for a in plan["argv"]], False
    try:
        p = subprocess.run(  # noqa: UP022 (capture_output needs Python 3.7)
            argv,
            shell=shell,
            input=data.encode() if data is not None else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=plan["timeout"],
        )
    except subprocess.TimeoutExpired:
        raise ValueError("health check failed on the device: no result within {} s".format(plan["timeout"])) from None
    if p.returncode != 0:
        last = (p.stderr.decode(errors="replace").strip().splitlines() or [f"exit code {p.returncode}"])[-1]
        raise ValueError("health check failed on the device: " + last)
    got = numbers(p.stdout.decode(errors="replace"), every_line=plan.get("every_line", False))
    return compare(plan["expected"], got, plan["atol"]), len(got)


def activate(root, sha, keep):
    """Switch `current` to `sha` (the old one becomes `previous`), run its health.json check, roll both links back
    if it fails, prune to `keep` versions if it passes. `changed` is false when `sha` was already current."""
    old_current, old_previous = link_target(root, "current"), link_target(root, "previous")
    out = {"old_current": old_current, "old_previous": old_previous, "changed": old_current != sha}
    with open(os.path.join(root, "models", sha, "health.json")) as f:
        plan = json.load(f)
    journal = os.path.join(root, "activating.json")
    if old_current != sha:
        tmp = os.path.join(root, f".activating.json.tmp-{os.getpid()}")
        with open(tmp, "w") as f:
            json.dump({"sha256": sha, "current": old_current, "previous": old_previous, "pid": os.getpid()}, f)
        os.replace(tmp, journal)
        set_link(root, "current", sha)
        set_link(root, "previous", old_current or "-")
    try:
        hold("health")
        worst, n = health(root, sha, plan)
    except ValueError as ex:
        if old_current != sha:
            set_link(root, "current", old_current or "-")
            set_link(root, "previous", old_previous or "-")
            os.unlink(journal)
        out.update(ok=False, changed=False, error=str(ex), current=link_target(root, "current"))
        return out
    if old_current != sha:
        os.unlink(journal)
    hold("report")
    out.update(ok=True, worst=worst, n=n, removed=prune(root, keep), current=sha)
    return out


def rollback(root, sha, current, previous):
    """Undo an activation of `sha` whose stage failed elsewhere: only if `sha` is still current (idempotent)."""
    if link_target(root, "current") != sha:
        return {"changed": False, "current": link_target(root, "current")}
    set_link(root, "current", current)
    set_link(root, "previous", previous)
    return {"changed": True, "current": link_target(root, "current")}


def prune(root, keep):
    """Keep the newest `keep` versions, and always current and previous; the removed SHAs."""
    pinned = {link_target(root, "current"), link_target(root, "previous")}
    removed = []
    for i, meta in enumerate(versions(root)):
        if i >= keep and meta["sha256"] not in pinned:
            shutil.rmtree(os.path.join(root, "models", meta["sha256"]))
            removed.append(meta["sha256"])
    return removed


def install(root, wheel, force):
    """Install the edgelstm wheel with its `device` extra into ROOT/venv, unless that version is there already."""
    venv = os.path.join(root, "venv")
    python = os.path.join(venv, "bin", "python")
    m = re.match(r"edgelstm-([^-]+)-", os.path.basename(wheel))
    have = (interpreters(python) if os.path.exists(python) else {}).get("edgelstm")
    if m and have == m.group(1) and force != "force":
        return {"ok": True, "changed": False, "version": have}
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    steps = [] if os.path.exists(python) else [[sys.executable, "-m", "venv", venv]]
    steps += [pip + [wheel + "[device]"], pip + ["--force-reinstall", "--no-deps", wheel]]
    for step in steps:
        p = subprocess.run(step, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=900)  # noqa: UP022
        if p.returncode != 0:
            last = (p.stderr.decode(errors="replace").strip().splitlines() or [f"exit code {p.returncode}"])[-1]
            return {"ok": False, "changed": True, "error": last}
    return {"ok": True, "changed": True, "version": interpreters(python).get("edgelstm")}


def main(argv):
    root = os.path.abspath(os.path.expanduser(argv[0]))
    cmd, args = argv[1], argv[2:]
    os.makedirs(os.path.join(root, "models"), exist_ok=True)
    undone = recover(root)
    if cmd == "recover":  # what the host calls after an agent died: the links now, and whether an activation was undone
        pending = os.path.exists(os.path.join(root, "activating.json"))  # an activation under way in a live agent
        return {"undone": undone is not None, "pending": pending, "current": link_target(root, "current")}
    if cmd == "status":  # status [SHA]: with a SHA, also whether an intact copy of it is there (`has`)
        return dict(status(root), has=main([root, "has", args[0]])["ok"]) if args else status(root)
    if cmd == "prepare":  # a fresh temporary folder for one upload; leftovers of failed uploads go first
        models = os.path.join(root, "models")
        for name in os.listdir(models):
            if name.startswith(".tmp-"):
                shutil.rmtree(os.path.join(models, name), ignore_errors=True)
        tmp = os.path.join(models, f".tmp-{args[0][:12]}-{os.getpid()}")
        os.makedirs(tmp)
        return {"tmp": tmp}
    if cmd == "commit":  # verify the upload's SHA-256, then move it into models/<sha> by rename
        sha, tmp, name, original = args
        got = sha256(os.path.join(tmp, name + ".part"))
        if got != sha:
            shutil.rmtree(tmp, ignore_errors=True)
            return {"ok": False, "sha256": got}
        hold("commit")
        os.replace(os.path.join(tmp, name + ".part"), os.path.join(tmp, name))
        size = os.path.getsize(os.path.join(tmp, name))
        with open(os.path.join(tmp, "meta.json"), "w") as f:
            json.dump({"sha256": sha, "file": name, "name": original, "size": size, "deployed": time.time()}, f)
        final = os.path.join(root, "models", sha)
        if os.path.isdir(final):
            shutil.rmtree(final)
        os.replace(tmp, final)
        return {"ok": True, "sha256": got}
    if cmd == "has":  # an intact copy of this version is already there: no upload needed
        sha = args[0]
        meta_path = os.path.join(root, "models", sha, "meta.json")
        if not os.path.isfile(meta_path):
            return {"ok": False}
        with open(meta_path) as f:
            meta = json.load(f)
        path = os.path.join(root, "models", sha, meta["file"])
        ok = os.path.isfile(path) and sha256(path) == sha
        if ok:
            os.utime(meta_path)
        return {"ok": ok}
    if cmd == "setlinks":  # setlinks CURRENT PREVIOUS ('-' removes a link)
        set_link(root, "current", args[0])
        set_link(root, "previous", args[1])
        return {"current": link_target(root, "current"), "previous": link_target(root, "previous")}
    if cmd == "prune":  # keep the newest N versions, and always current and previous
        return {"removed": prune(root, int(args[0]))}
    if cmd == "activate":  # activate SHA KEEP: switch, health-check (models/SHA/health.json), roll back or prune
        return activate(root, args[0], int(args[1]))
    if cmd == "rollback":  # rollback SHA CURRENT PREVIOUS: undo activate's switch if SHA is still current
        return rollback(root, *args)
    if cmd == "install":  # install WHEEL [force]: the runtime venv, skipped when that version is installed
        return install(root, args[0], args[1] if len(args) > 1 else "")
    raise SystemExit("unknown agent command: " + cmd)


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
