"""`homeguard broker ...`: create and run a broker directory, manage device accounts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from broker import acl, layout, tls
from broker.errors import BrokerError

app = typer.Typer(help="Mosquitto broker: config, TLS material, device accounts and ACL.",
                  no_args_is_help=True)

DirOpt = Annotated[Path, typer.Option(
    "--dir", "-d", envvar="HG_BROKER_DIR", help="Broker directory.", show_default=True,
)]
DEFAULT_DIR = Path("var/broker")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="broker")


def fail(exc: Exception) -> typer.Exit:
    """The one-line error and exit code 2 of every broker command."""
    typer.secho(f"error: {exc}", fg="red", err=True)
    return typer.Exit(code=2)


def _reload(bdir: Path) -> None:
    if layout.reload(bdir):
        typer.echo("broker reloaded (SIGHUP)")
    else:
        typer.echo("no running broker found; the change applies when it starts")


@app.command()
def init(
    dir: DirOpt = DEFAULT_DIR,
    hostname: Annotated[list[str] | None, typer.Option(
        "--hostname", "-H", help="Extra name or IP in the server cert (repeatable).")] = None,
    tls_port: Annotated[int | None, typer.Option(help="Device TLS port [8883].")] = None,
    local_port: Annotated[int | None, typer.Option(
        help="Loopback plain port for the gateway [1883].")] = None,
    tls_bind: Annotated[str | None, typer.Option(
        help="Address the TLS listener binds to \\[every interface].")] = None,
    gateway_user: Annotated[str | None, typer.Option(help="Gateway account \\[gateway].")] = None,
    run_user: Annotated[str | None, typer.Option(
        help="User Mosquitto switches to when started as root \\[mosquitto].")] = None,
) -> None:
    """Create or update a broker directory; keeps the CA and every password."""
    try:
        result = layout.init(dir, hostnames=hostname or None, tls_port=tls_port,
                             local_port=local_port, tls_bind=tls_bind,
                             gateway_user=gateway_user, run_user=run_user)
    except BrokerError as exc:
        raise fail(exc) from exc
    s, d = result.settings, result.dir
    typer.echo(f"broker directory {d.root}")
    where = s.tls_bind or "0.0.0.0"
    typer.echo(f"  devices:  mqtts://{where}:{s.tls_port} (CA {d.tls_paths.ca_cert})")
    typer.echo(f"  gateway:  mqtt://127.0.0.1:{s.local_port} as {s.gateway_user!r}")
    typer.echo(f"  config:   {d.config_file}")
    if result.gateway_password:
        typer.echo(f"  gateway password written to {d.gateway_password_file}")
    for name in result.reserved_devices:
        typer.secho(f"warning: device account {name!r} has a name reserved for a service's "
                    f"client id; remove it (broker remove-device {name})", fg="yellow", err=True)


@app.command("add-device")
def add_device(
    device_id: Annotated[str, typer.Argument(metavar="ID", help="Device id (\\[a-z0-9-], 3-32).")],
    password: Annotated[str | None, typer.Option(
        help="Use this password instead of a random one.")] = None,
    dir: DirOpt = DEFAULT_DIR,
) -> None:
    """Create a device account (or give it a new password) and print the password once."""
    try:
        secret = layout.add_device(dir, device_id, password)
    except BrokerError as exc:
        raise fail(exc) from exc
    typer.echo(f"device {device_id}: password {secret}")
    typer.echo("(shown once: provision it into the device now)")
    _reload(dir)


@app.command("remove-device")
def remove_device(
    device_id: Annotated[str, typer.Argument(metavar="ID")],
    dir: DirOpt = DEFAULT_DIR,
) -> None:
    """Delete a device account; a reload disconnects it."""
    try:
        removed = layout.remove_device(dir, device_id)
    except BrokerError as exc:
        raise fail(exc) from exc
    if not removed:
        raise fail(BrokerError(f"no device account {device_id!r}"))
    typer.echo(f"device {device_id} removed")
    _reload(dir)


@app.command()
def devices(dir: DirOpt = DEFAULT_DIR) -> None:
    """List device accounts."""
    try:
        for device_id in layout.devices(dir):
            typer.echo(device_id)
    except BrokerError as exc:
        raise fail(exc) from exc


@app.command("gateway")
def gateway_account(
    user: Annotated[str | None, typer.Option(help="Rename the gateway account.")] = None,
    password: Annotated[str | None, typer.Option(help="Instead of a random one.")] = None,
    dir: DirOpt = DEFAULT_DIR,
) -> None:
    """Set the gateway account's name and/or a new password (printed once)."""
    try:
        secret = layout.set_gateway(dir, user, password)
    except BrokerError as exc:
        raise fail(exc) from exc
    typer.echo(f"gateway password {secret} (also in gateway.password)")
    _reload(dir)


@app.command("add-gateway")
def add_gateway(
    user: Annotated[str, typer.Argument(metavar="USER", help="Account of a further gateway.")],
    password: Annotated[str | None, typer.Option(help="Instead of a random one.")] = None,
    dir: DirOpt = DEFAULT_DIR,
) -> None:
    """Create a gateway account for one more gateway of a share group; print its password once."""
    try:
        secret = layout.add_gateway(dir, user, password)
    except BrokerError as exc:
        raise fail(exc) from exc
    typer.echo(f"gateway {user}: password {secret}")
    typer.echo("(shown once: put it in that gateway's [mqtt] password)")
    _reload(dir)


@app.command("remove-gateway")
def remove_gateway(
    user: Annotated[str, typer.Argument(metavar="USER")],
    dir: DirOpt = DEFAULT_DIR,
) -> None:
    """Delete a further gateway account; a reload disconnects it."""
    try:
        removed = layout.remove_gateway(dir, user)
    except BrokerError as exc:
        raise fail(exc) from exc
    if not removed:
        raise fail(BrokerError(f"no further gateway account {user!r}"))
    typer.echo(f"gateway {user} removed")
    _reload(dir)


@app.command()
def gateways(dir: DirOpt = DEFAULT_DIR) -> None:
    """List gateway accounts, the main one first."""
    try:
        for user in layout.gateways(dir):
            typer.echo(user)
    except BrokerError as exc:
        raise fail(exc) from exc


@app.command("acl")
def show_acl(dir: DirOpt = DEFAULT_DIR) -> None:
    """Print the rendered ACL."""
    users = [acl.DEFAULT_GATEWAY_USER]
    if layout.BrokerDir(dir).settings_file.exists():
        users = layout.BrokerDir(dir).settings().services()
    typer.echo(acl.render(users), nl=False)


@app.command("tls")
def tls_material(
    dir: DirOpt = DEFAULT_DIR,
    hostname: Annotated[list[str] | None, typer.Option("--hostname", "-H")] = None,
    renew: Annotated[bool, typer.Option(help="Issue a new server cert now.")] = False,
    new_ca: Annotated[bool, typer.Option(
        help="Replace the CA too (every device then needs the new ca.crt).")] = False,
) -> None:
    """Create or renew the CA and server cert; restart Mosquitto to serve a new cert."""
    try:
        if hostname:
            layout.init(dir, hostnames=hostname)
        bdir = layout.BrokerDir(dir)
        paths = tls.ensure(bdir.tls_paths.dir, bdir.settings().hostnames, renew, new_ca)
    except BrokerError as exc:
        raise fail(exc) from exc
    typer.echo(f"CA {paths.ca_cert}\nserver cert {paths.server_cert}")


@app.command("reload")
def reload_broker(dir: DirOpt = DEFAULT_DIR) -> None:
    """SIGHUP the running Mosquitto: it re-reads passwd and ACL."""
    _reload(dir)
