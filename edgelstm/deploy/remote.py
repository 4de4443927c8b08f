"""`edgelstm remote`: what runs on a deployed device — status, the streaming runner, bench, a service unit."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import DeployError
from .device import Device, Status
from .service import UNIT_NAME, unit_text
from .ssh import Connection, quote


def runner_command(st: Status, sub: str, args: list[str], model: str | None = None) -> str:
    """The runner (`python -u -m edgelstm.runtime MODEL ARGS`) or `python -u -m edgelstm bench MODEL ARGS` in
    the device's venv, on the current model by default."""
    if st.venv is None:
        raise DeployError(f"no edgelstm runtime under {st.root}/venv on the device: run `edgelstm deploy` first")
    model = model or current_model(st)
    module = ["edgelstm.runtime"] if sub == "run" else ["edgelstm", sub]
    return quote(st.venv_python, "-u", "-m", *module, model, *args)


def current_model(st: Status) -> str:
    v = st.version(st.current)
    if v is None:
        raise DeployError(f"no current model on the device under {st.root}: run `edgelstm deploy` first")
    return f"{st.root}/current/{v['file']}"


def run(conn: Connection, sub: str, args: list[str], on_line: Callable[[str], None]) -> int:
    """Run `edgelstm SUB` on the device, streaming its lines; Ctrl-C stops the remote process."""
    st = Device(conn).status()
    return conn.stream(runner_command(st, sub, args), on_line)


def install_service(conn: Connection, args: list[str]) -> tuple[str, str]:
    """Write the systemd user unit for the runner on the current model; enable it if systemd is there."""
    st = Device(conn).status()
    if st.venv is None:
        raise DeployError(f"no edgelstm runtime under {st.root}/venv on the device: run `edgelstm deploy` first")
    text = unit_text(st.venv_python, current_model(st), args)
    path = f".config/systemd/user/{UNIT_NAME}"
    rc, _, err = conn.run(f'mkdir -p "$HOME/.config/systemd/user" && cat > "$HOME/{path}"', stdin=text.encode())
    if rc != 0:
        raise DeployError(f"writing {path} on the device failed: {err.strip()}")
    rc, _, err = conn.run(f"systemctl --user daemon-reload && systemctl --user enable --now {UNIT_NAME}")
    why = (err.strip() or "no systemd").splitlines()[-1]
    state = "enabled and started" if rc == 0 else f"written, not started ({why})"
    return path, state
