"""The review and access commands of ``modelpilot``: promote, rollback, approve, reject, token.

Registered on the main Typer app by :mod:`modelpilot.cli`. Changing commands act as the
local user until the first API token exists; from then on they need an operator token
(``--token`` or the ``MODELPILOT_TOKEN`` environment variable), and the token's name is
recorded as the actor. ``token create`` and ``token revoke`` likewise need an admin token
once any active token exists; the very first token is created locally without one, and must
be an admin token (otherwise nobody could create or revoke tokens afterwards).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

# the same options as modelpilot.cli's (defined here too: that module imports this one)
ConfigOpt = Annotated[Path, typer.Option("-c", "--config", help="Path of pilot.yaml.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="MODELPILOT_TOKEN", help="An operator API token (once tokens exist)."),
]
CommentOpt = Annotated[str | None, typer.Option("--comment", "-m", help="Why: recorded with the decision.")]
ReasonOpt = Annotated[str, typer.Option("--reason", "-m", help="Why: recorded in the audit log.")]
AdminTokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="MODELPILOT_TOKEN", help="An admin API token (once any token exists)."),
]

token_app = typer.Typer(help="API tokens: create (printed once), list, revoke.", no_args_is_help=True)


def require_admin(pilot: Any, token: str | None, action: str) -> str:
    """The admin acting: anyone local before the first token, then an admin token's name.

    Raises:
        AuthError: tokens exist and none (or an unknown one) was given.
        Forbidden: the token's role is below admin.
    """
    from modelpilot import auth
    from modelpilot.errors import AuthError, Forbidden

    if token is None and not auth.tokens_exist(pilot.store):
        return "cli"
    try:
        return auth.require(pilot.store, token, "admin", action=action).name
    except AuthError as exc:
        if isinstance(exc, Forbidden):
            raise
        raise AuthError(
            f"{action} needs an admin token once any token exists: pass --token or set "
            "MODELPILOT_TOKEN ('modelpilot token list' shows the tokens, never their values)"
        ) from None


def register(app: typer.Typer) -> None:
    """Add the commands to ``app``."""
    from modelpilot.cli import _pilot, console, print_json

    def show(result: dict[str, object], as_json: bool, line: str) -> None:
        print_json(result) if as_json else console.print(line)

    @app.command()
    def promote(
        version: Annotated[int, typer.Argument(help="The version to make champion.")],
        config: ConfigOpt = Path("pilot.yaml"), reason: ReasonOpt = "", token: TokenOpt = None,
        as_json: JsonOpt = False,
        force: Annotated[bool, typer.Option("--force", help="Promote a version a gate or a person rejected "
                                            "(recorded with your name).")] = False,
    ) -> None:
        """Make VERSION the champion now (ends any rollout in progress).

        VERSION must load and answer a probe prediction; a rejected version needs --force.
        """
        with _pilot(config) as pilot:
            r = pilot.promote(version, reason, token=token, force=force)
        show(r, as_json, f"{r['model']}: v{r['champion']} is champion (was v{r['previous']})")

    @app.command()
    def rollback(
        config: ConfigOpt = Path("pilot.yaml"), reason: ReasonOpt = "", token: TokenOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Stop the rollout in progress, or put the previous champion back at once."""
        with _pilot(config) as pilot:
            r = pilot.rollback(reason, token=token)
        what = "rollout stopped" if r["action"] == "rollout_stopped" else "previous champion restored"
        show(r, as_json, f"{r['model']}: {what}; v{r['champion']} serves")

    @app.command()
    def approve(
        version: Annotated[int, typer.Argument(help="The version awaiting approval.")],
        config: ConfigOpt = Path("pilot.yaml"), comment: CommentOpt = None, token: TokenOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Approve VERSION; the configured rollout strategy starts."""
        with _pilot(config) as pilot:
            r = pilot.approve(version, comment, token=token)
        show(r, as_json, f"{r['model']} v{version} approved by {r['by']}; rollout {r['rollout']}")

    @app.command()
    def reject(
        version: Annotated[int, typer.Argument(help="The version awaiting approval.")],
        config: ConfigOpt = Path("pilot.yaml"), comment: CommentOpt = None, token: TokenOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Reject VERSION; the champion keeps serving."""
        with _pilot(config) as pilot:
            r = pilot.reject(version, comment, token=token)
        show(r, as_json, f"{r['model']} v{version} rejected by {r['by']}")

    admin = require_admin

    @token_app.command("create")
    def token_create(
        role: Annotated[str, typer.Option("--role", help="viewer, labeler, operator or admin.")],
        name: Annotated[str | None, typer.Option("--name", help="Who or what uses it (the audit log's actor).")] = None,
        config: ConfigOpt = Path("pilot.yaml"), token: AdminTokenOpt = None, as_json: JsonOpt = False,
    ) -> None:
        """Create a token and print it ONCE (only its hash is stored); needs an admin token once tokens exist."""
        from modelpilot import auth
        from modelpilot.auth import create_token
        from modelpilot.errors import ConfigError

        with _pilot(config) as pilot:
            label = name or f"{role}-token"
            if role != "admin" and token is None and not auth.tokens_exist(pilot.store):
                # without an admin nobody could create or revoke tokens afterwards
                raise ConfigError(
                    f"the first token must be an admin token (it creates and revokes the others): run "
                    f"'modelpilot token create --role admin --name <you>', then create the {role} token with it"
                )
            admin(pilot, token, f"create a {role} token")
            created = create_token(pilot.store, label, role)
        if as_json:
            print_json({"name": label, "role": role, "token": created})
        else:
            console.print(f"token for [bold]{label}[/] ({role}) — shown only now, store it safely:")
            typer.echo(created)

    @token_app.command("list")
    def token_list(config: ConfigOpt = Path("pilot.yaml"), as_json: JsonOpt = False) -> None:
        """Tokens (never their values): id, name, role, created, revoked."""
        with _pilot(config) as pilot:
            rows = [
                {"id": t.id, "name": t.name, "role": t.role, "created_at": t.created_at.isoformat(),
                 "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None}
                for t in pilot.store.list_tokens()
            ]
        if as_json:
            print_json(rows)
            return
        for r in rows:
            state = f"revoked {str(r['revoked_at'])[:19]}" if r["revoked_at"] else "active"
            console.print(f"{r['id']:>4}  {r['name']:<24} {r['role']:<9} {str(r['created_at'])[:19]}  {state}")

    @token_app.command("revoke")
    def token_revoke(
        token_id: Annotated[int, typer.Argument(help="The id shown by 'modelpilot token list'.")],
        config: ConfigOpt = Path("pilot.yaml"), token: AdminTokenOpt = None,
    ) -> None:
        """Revoke a token: it stops working at once (servers: within a few seconds); needs an admin token."""
        with _pilot(config) as pilot:
            actor = admin(pilot, token, f"revoke token {token_id}")
            pilot.store.revoke_token(token_id, actor=actor)
        console.print(f"token {token_id} revoked")

    app.add_typer(token_app, name="token")
