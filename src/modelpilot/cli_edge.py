"""``modelpilot edge``: keys, bundles, devices, the fleet loop, and the on-device agent.

Registered on the main Typer app by :mod:`modelpilot.cli`. ``edge run`` hands its arguments
to :func:`modelpilot.edge.agent.main` untouched (the same command a device runs as
``python agent.py``), so it works without a pilot.yaml.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from modelpilot.cli_rollout import AdminTokenOpt, ConfigOpt, JsonOpt, TokenOpt, require_admin

edge_app = typer.Typer(help="Models on devices: signed bundles, an agent, the fleet loop.", no_args_is_help=True)
device_app = typer.Typer(help="Edge devices: add (prints the device token once), list, pin.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``modelpilot edge`` to ``app``."""
    from modelpilot.cli import _pilot, console, print_json

    @edge_app.command("keygen")
    def keygen(
        config: ConfigOpt = Path("pilot.yaml"),
        out: Annotated[Path | None, typer.Option("--out", help="Private key path (default: edge.signing_key).")] = None,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing key.")] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Write the Ed25519 key pair bundles are signed with; give devices the .pub file."""
        from modelpilot.config import PilotConfig
        from modelpilot.edge.bundle import keygen as make

        path = out if out is not None else PilotConfig.load(config).resolve_path(
            PilotConfig.load(config).edge.signing_key)
        private, public = make(path, overwrite=overwrite)
        result = {"private_key": str(private), "public_key": str(public), "public_hex": public.read_text().strip()}
        print_json(result) if as_json else console.print(
            f"signing key written to {private} (keep it at home); devices trust {public}")

    @edge_app.command("export")
    def export(
        out: Annotated[Path | None, typer.Option("--out", help="Folder to write the bundle to.")] = None,
        version: Annotated[int | None, typer.Option("--version", help="The version (default: the champion).")] = None,
        publish: Annotated[bool, typer.Option("--publish", help="Also publish it for devices to pull.")] = False,
        config: ConfigOpt = Path("pilot.yaml"), as_json: JsonOpt = False,
    ) -> None:
        """Convert a version to ONNX and write it as a signed bundle (and/or publish it)."""
        from modelpilot.edge.export import export_version
        from modelpilot.errors import ConfigError

        if out is None and not publish:
            raise ConfigError("say where the bundle goes: --out DIR, --publish, or both")
        with _pilot(config) as pilot:
            r = export_version(pilot.cfg, pilot.store, pilot.artifacts, version, out=out, publish_it=publish)
        where = r["path"] or "the artifact store"
        print_json(r) if as_json else console.print(
            f"{r['model']} v{r['version']}: bundle of {r['bytes']:,} bytes written to {where}"
            f"{' and published' if r['published'] else ''}")

    @edge_app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def run(ctx: typer.Context) -> None:
        """Run the on-device agent: BUNDLE --source FILE|DIR|- --public-key KEY [--home URL ...]
        (see 'modelpilot edge run --help-agent')."""
        from modelpilot.edge.agent import main

        args = ["--help" if a == "--help-agent" else a for a in ctx.args]
        raise typer.Exit(main(args))

    @device_app.command("add")
    def device_add(
        name: Annotated[str, typer.Argument(help="The device's name (its URL path segment).")],
        config: ConfigOpt = Path("pilot.yaml"), token: AdminTokenOpt = None, as_json: JsonOpt = False,
    ) -> None:
        """Register a device and print its token ONCE (it may only report and pull bundles)."""
        from modelpilot import auth

        with _pilot(config) as pilot:
            actor = require_admin(pilot, token, f"add edge device {name}")
            pilot.store.add_device(name, pilot.cfg.model.name, actor=actor)
            created = auth.create_device_token(pilot.store, name)
        if as_json:
            print_json({"device": name, "token": created})
        else:
            console.print(f"device [bold]{name}[/] added; its token — shown only now:")
            typer.echo(created)

    @device_app.command("list")
    def device_list(config: ConfigOpt = Path("pilot.yaml"), as_json: JsonOpt = False) -> None:
        """The fleet: version, last report, drift, counters and cost per device."""
        from modelpilot.edge.fleet import device_costs
        from modelpilot.edge.routes import fleet_rows

        with _pilot(config) as pilot:
            rows = fleet_rows(pilot.store, pilot.cfg.model.name)
            costs = {c["device"]: c for c in device_costs(pilot.cfg, pilot.store, pilot.cfg.model.name)}
        for row in rows:
            row["cost"] = costs.get(row["device"])
        if as_json:
            print_json({"devices": rows})
            return
        from rich.table import Table

        table = Table("device", "version", "pinned", "last report", "rows", "flagged", "drifted", "sent", "cost")
        for r in rows:
            c = r["cost"] or {}
            table.add_row(r["device"], str(r["version"] or "-"), str(r["pinned_version"] or "-"),
                          r["last_report_at"] or "never", f"{r['rows']:,}", "yes" if r["flagged"] else "no",
                          ", ".join(r["drifted_features"]) or "-", f"{r['bytes_sent']:,} B",
                          f"{c.get('total', 0.0):.6f} {c.get('currency', '')}")
        console.print(table)

    @device_app.command("pin")
    def device_pin(
        name: Annotated[str, typer.Argument(help="The device.")],
        version: Annotated[int | None, typer.Argument(help="The version to pin it to; omit to unpin.")] = None,
        config: ConfigOpt = Path("pilot.yaml"), token: TokenOpt = None,
    ) -> None:
        """Pin a device to a version (or unpin it: it follows the champion and canaries again)."""
        with _pilot(config) as pilot:
            actor = pilot.actor(token, f"pin edge device {name}")
            if version is not None:
                pilot.store.get_version(pilot.cfg.model.name, version)
            pilot.store.pin_device(name, version, actor=actor)
        console.print(f"{name}: pinned to v{version}" if version else f"{name}: follows the champion")

    @edge_app.command("tick")
    def tick(
        config: ConfigOpt = Path("pilot.yaml"),
        every: Annotated[float | None, typer.Option("--every", help="Repeat every this many seconds.")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """One pass of the fleet loop: drift per device, triggers on aggregates, retrain, canary."""
        from modelpilot.edge.export import fleet_pass

        with _pilot(config) as pilot:
            while True:
                out: dict[str, Any] = fleet_pass(pilot)
                if as_json:
                    print_json(out)
                else:
                    flagged = [d for d, i in out["devices"].items() if i["flagged"]]
                    rollout = out.get("rollout") or {}
                    console.print(f"{len(out['devices'])} devices; flagged: {', '.join(flagged) or 'none'}; "
                                  f"retrain: {out['retrain'] or 'no'}; canary: {rollout.get('status', '-')}")
                if every is None:
                    break
                time.sleep(every)

    edge_app.add_typer(device_app, name="device")
    app.add_typer(edge_app, name="edge")
