"""A systemd user unit that keeps the runner going on the device, always on the `current` model."""

from __future__ import annotations

import shlex

UNIT_NAME = "edgelstm.service"


def unit_text(python: str, model: str, args: list[str]) -> str:
    """The unit file: runs `python -u -m edgelstm.runtime MODEL ARGS` and restarts it when it fails.

    MODEL should be under ~/.edgelstm/current, so a deploy (which restarts the unit) switches it too.
    """
    cmd = " ".join(shlex.quote(a) for a in [python, "-u", "-m", "edgelstm.runtime", model, *args])
    return (
        "[Unit]\n"
        "Description=edgelstm streaming runner\n"
        "After=network-online.target\n\n"
        "[Service]\n"
        "Environment=PYTHONUNBUFFERED=1\n"
        f"ExecStart={cmd.replace('%', '%%')}\n"
        "Restart=on-failure\n"
        "RestartSec=2\n\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )
