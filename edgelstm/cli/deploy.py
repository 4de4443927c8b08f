"""`edgelstm deploy`."""

from __future__ import annotations

from pathlib import Path

import click

from .options import echo_err


def host_options(f):
    """Options shared by `deploy` and `remote`: how to reach and trust hosts."""
    f = click.option(
        "--timeout",
        default=15.0,
        show_default=True,
        type=click.FloatRange(min=0, min_open=True),
        help="Seconds without an answer before a host counts as lost.",
    )(f)
    f = click.option(
        "--trust-new-host",
        is_flag=True,
        help="Accept (and save to known_hosts) the key of a host not yet in known_hosts.",
    )(f)
    return f


def format_table(results) -> str:
    rows = [("HOST", "RESULT", "SECONDS", "UPLOAD MB/s", "DETAIL")]
    for r in results:
        rows.append(
            (
                r.host,
                "ok" if r.ok else "FAILED",
                f"{r.seconds:.1f}",
                f"{r.throughput_mb_s:.1f}" if r.upload_seconds else "-",
                r.message,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4] for row in rows)


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "--host",
    "hosts",
    multiple=True,
    help="[user@]host[:port] or a ~/.ssh/config alias; repeat for a fleet.",
)
@click.option(
    "--inventory",
    type=click.Path(path_type=Path),
    help="Ansible inventory (INI or YAML): its hosts, with ansible_host/ansible_port/ansible_user.",
)
@click.option("--limit", help="With --inventory: only these groups or hosts (comma-separated).")
@click.option(
    "--rollout",
    help="Deploy in stages, e.g. 1,10%,50%,100% (Ansible's serial: each entry one batch, the last repeats).",
)
@click.option(
    "--max-fail",
    default="0",
    show_default=True,
    help="With --rollout: failures a stage may have (count, or % of the stage) before the rollout stops and "
    "that stage rolls back.",
)
@click.option("--target", help="Target profile the model must satisfy.")
@click.option(
    "--keep",
    default=3,
    type=click.IntRange(min=1),
    show_default=True,
    help="Model versions kept on the device (plus current/previous).",
)
@click.option(
    "--parallel", default=4, type=click.IntRange(min=1), show_default=True, help="Hosts deployed to at the same time."
)
@click.option(
    "--health-cmd",
    help="Health check: shell line with {python} and {model}, printing JSON numbers; run "
    "here and on the device, results compared (default: the model on a fixed input).",
)
@click.option(
    "--health-expect",
    type=click.Path(path_type=Path),
    help="JSON file with the numbers the health check must give (instead of running it here).",
)
@click.option(
    "--atol",
    type=click.FloatRange(min=0),
    help="Health check tolerance, max |Δ| (default 1e-4; 0.02 for int8/16x8 models).",
)
@click.option(
    "--install-runtime/--no-install-runtime",
    default=True,
    show_default=True,
    help="Install the edgelstm runtime into ~/.edgelstm/venv when missing or outdated.",
)
@click.option("--reinstall-runtime", is_flag=True, help="Reinstall the runtime even if its version matches.")
@click.option(
    "--runtime-wheel",
    type=click.Path(path_type=Path),
    help="Wheel to install (default: this package, built here from its source tree or its installed files).",
)
@host_options
def deploy(
    model,
    hosts,
    inventory,
    limit,
    rollout,
    max_fail,
    target,
    keep,
    parallel,
    health_cmd,
    health_expect,
    atol,
    install_runtime,
    reinstall_runtime,
    runtime_wheel,
    timeout,
    trust_new_host,
):
    """Upload MODEL to each host, verify it, switch to it atomically, health-check it, roll back on failure;
    with --rollout, stage by stage, stopping (and rolling that stage back) when a stage fails too often."""
    from ..deploy.deploy import DeployOptions, HealthCheck, deploy
    from ..deploy.ssh import ConnectOptions
    from ..errors import DeployError, InputError

    named = [(h, h) for h in hosts]
    if inventory:
        from ..deploy.inventory import read_inventory

        named += [(h.name, h.spec) for h in read_inventory(inventory, limit.split(",") if limit else None)]
    elif limit:
        raise InputError("--limit selects from an --inventory; give one")
    if not named:
        raise InputError("give at least one --host, or an --inventory")
    if target:  # a target that does not exist is refused before any host is dialled
        from ..targets.profile import load_target

        load_target(target)
    if rollout:
        from ..deploy.rollout import parse_max_fail, parse_rollout

        stages, threshold = parse_rollout(rollout), parse_max_fail(max_fail)

    expected = None
    if health_expect:
        from ..deploy.deploy import numbers

        try:
            expected = numbers(health_expect.read_text())
        except (OSError, DeployError) as ex:
            raise InputError(f"{health_expect}: {ex}") from None
    opts = DeployOptions(
        keep=keep,
        install_runtime=install_runtime,
        reinstall_runtime=reinstall_runtime,
        wheel=runtime_wheel,
        health=HealthCheck(command=health_cmd, atol=atol, expected=expected),
        target=target,
        parallel=parallel,
        connect=ConnectOptions(trust_new_host=trust_new_host, timeout=timeout),
        notify=lambda host, msg: echo_err(f"{host}: {msg}"),
    )
    if rollout:
        from ..deploy.rollout import format_rollout, rollout_error
        from ..deploy.rollout import rollout as staged

        report = staged(model, named, opts, stages, threshold)
        click.echo(format_rollout(report))
        error = rollout_error(report)
        if error:
            raise error
        return
    results = deploy(model, [spec for _, spec in named], opts)
    for (name, _), r in zip(named, results):  # rows and errors by the inventory's names
        r.host = name
    click.echo(format_table(results))
    failed = [r for r in results if not r.ok]
    if failed:
        if len(results) == 1:
            r = failed[0]
            raise DeployError(f"{r.host}: {r.message}")
        raise DeployError(f"{len(failed)} of {len(results)} hosts failed: " + ", ".join(r.host for r in failed))
