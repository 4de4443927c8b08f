"""Device-side helper, sent over SSH to `python3 -` on every call: stdlib only, Python >= 3.6, one JSON line out.

Layout under ROOT (default ~/.edgelstm): models/<sha256>/model.<ext> + meta.json, `current` and `previous`
symlinks to models/<sha256>, venv/ (the edgelstm runtime), wheels/. Usage: python3 - ROOT COMMAND [ARGS].
"""

import hashlib
import json
import os
import platform
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
    os.symlink(os.path.join("models", sha), tmp)
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


def main(argv):
    root = os.path.abspath(os.path.expanduser(argv[0]))
    cmd, args = argv[1], argv[2:]
    os.makedirs(os.path.join(root, "models"), exist_ok=True)
    if cmd == "status":
        return status(root)
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
        keep = int(args[0])
        pinned = {link_target(root, "current"), link_target(root, "previous")}
        removed = []
        for i, meta in enumerate(versions(root)):
            if i >= keep and meta["sha256"] not in pinned:
                shutil.rmtree(os.path.join(root, "models", meta["sha256"]))
                removed.append(meta["sha256"])
        return {"removed": removed}
    raise SystemExit("unknown agent command: " + cmd)


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
