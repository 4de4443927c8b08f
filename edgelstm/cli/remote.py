"""`edgelstm remote status|run|bench`."""

from __future__ import annotations

import time

import click

from .deploy import host_options


def _connect(host: str, timeout: float, trust_new_host: bool):
    from ..deploy.ssh import Connection, ConnectOptions, HostSpec

    return Connection(
        HostSpec.parse(host),
        ConnectOptions(
            trust_new_host=trust_new_host, timeout=timeout, notify=lambda m: click.echo(f"{host}: {m}", err=True)
        ),
    )


@click.group()
def remote() -> None:
    """Work with a device that `edgelstm deploy` set up."""


@remote.command()
@click.option("--host", required=True, help="[user@]host[:port] or a ~/.ssh/config alias.")
@host_options
def status(host, timeout, trust_new_host):
    """Show the device's current model, the versions kept and the runtime."""
    from ..deploy.device import Device

    with _connect(host, timeout, trust_new_host) as conn:
        st = Device(conn).status()
    interps = ", ".join(f"{k} {v}" for k, v in st.interpreters().items()) or "none"
    click.echo(f"host      {host} ({st.arch}, Python {st.python}, {st.free_bytes / 1e6:.0f} MB free)")
    click.echo(f"runtime   edgelstm {st.runtime_version or 'not installed'}; interpreters: {interps}")
    click.echo(f"current   {st.current or 'none'}")
    click.echo(f"previous  {st.previous or 'none'}")
    click.echo(f"versions  {len(st.versions)} under {st.root}/models")
    for v in st.versions:
        mark = "*" if v["sha256"] == st.current else " "
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(v["deployed"]))
        click.echo(f"  {mark} {v['sha256'][:12]}  {v['name']}  {v['size']} bytes  deployed {when} UTC")


@remote.command(context_settings={"ignore_unknown_options": True})
@click.option("--host", required=True, help="[user@]host[:port] or a ~/.ssh/config alias.")
@click.option("--service", is_flag=True, help="Instead of running now, install a systemd user unit that runs it.")
@host_options
@click.argument("runner_args", nargs=-1, type=click.UNPROCESSED)
def run(host, service, timeout, trust_new_host, runner_args):
    """Run `edgelstm run` on the device's current model, streaming its JSON lines here; Ctrl-C stops it."""
    from ..deploy import remote as lib

    with _connect(host, timeout, trust_new_host) as conn:
        if service:
            path, state = lib.install_service(conn, list(runner_args))
            click.echo(f"{host}: ~/{path} {state}")
            return
        try:
            rc = lib.run(conn, "run", list(runner_args), lambda line: click.echo(line))
        except KeyboardInterrupt:
            click.echo(f"{host}: stopped", err=True)
            rc = 130
    raise SystemExit(rc)


@remote.command(context_settings={"ignore_unknown_options": True})
@click.option("--host", required=True, help="[user@]host[:port] or a ~/.ssh/config alias.")
@host_options
@click.argument("bench_args", nargs=-1, type=click.UNPROCESSED)
def bench(host, timeout, trust_new_host, bench_args):
    """Run `edgelstm bench` on the device's current model and print its table."""
    from ..deploy import remote as lib

    with _connect(host, timeout, trust_new_host) as conn:
        rc = lib.run(conn, "bench", list(bench_args), lambda line: click.echo(line))
    raise SystemExit(rc)
