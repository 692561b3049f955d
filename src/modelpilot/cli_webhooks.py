"""``modelpilot webhooks``: what was sent to each webhook, and sending what is due now.

Registered on the main Typer app by :mod:`modelpilot.cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOpt = Annotated[Path, typer.Option("-c", "--config", help="Path of pilot.yaml.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]

webhooks_app = typer.Typer(help="Outbound webhooks: deliveries, send now.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``webhooks deliveries`` and ``webhooks send`` to ``app``."""
    from modelpilot.cli import _pilot, console, print_json

    @webhooks_app.command("deliveries")
    def deliveries(
        config: ConfigOpt = Path("pilot.yaml"),
        webhook: Annotated[str | None, typer.Option("--webhook", help="Only this webhook (its name).")] = None,
        status: Annotated[str | None, typer.Option("--status", help="Only pending, delivered or failed.")] = None,
        limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many (the newest).")] = 50,
        as_json: JsonOpt = False,
    ) -> None:
        """Every delivery attempt recorded: event, webhook, status, attempts, last answer."""
        with _pilot(config) as pilot:
            rows = [
                {"id": d.id, "webhook": d.webhook, "event_id": d.event_id, "kind": d.kind, "model": d.model,
                 "status": d.status, "attempts": d.attempts, "http_status": d.http_status, "error": d.error,
                 "next_attempt_at": d.next_attempt_at.isoformat() if d.status == "pending" else None,
                 "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None, "url": d.url}
                for d in pilot.store.deliveries(webhook=webhook, status=status, limit=limit)
            ]
        if as_json:
            print_json(rows)
            return
        if not rows:
            configured = "" if pilot.cfg.webhooks else " (no webhooks in pilot.yaml: see docs/webhooks.md)"
            console.print("no deliveries yet" + configured)
        for r in rows:
            answer = f"HTTP {r['http_status']}" if r["http_status"] else (r["error"] or "-")
            console.print(f"#{r['id']} {r['webhook']} event {r['event_id']} {r['kind']}: {r['status']} after "
                          f"{r['attempts']} attempt(s), last {answer}", highlight=False, soft_wrap=True)

    @webhooks_app.command("send")
    def send(config: ConfigOpt = Path("pilot.yaml"), as_json: JsonOpt = False) -> None:
        """Queue new events and send every due delivery now (the controller does it every tick)."""
        from modelpilot.errors import ConfigError

        with _pilot(config) as pilot:
            if pilot.webhooks is None:
                raise ConfigError("no webhooks in pilot.yaml: add a 'webhooks:' list (see docs/webhooks.md)")
            counts = pilot.webhooks.pump()
        if as_json:
            print_json(counts)
            return
        console.print(", ".join(f"{v} {k}" for k, v in counts.items()))

    app.add_typer(webhooks_app, name="webhooks")
