"""The dashboard: server-rendered pages with Plotly figures, served at ``/ui``.

The prediction server mounts it (``create_app`` includes :func:`ui_router`), and
``modelpilot ui`` serves it alone over a store with no model server running
(:func:`create_ui_app`). Plotly's JavaScript is served from the installed ``plotly``
package, so the pages work with no internet access.
"""

from __future__ import annotations

from modelpilot.ui.app import create_ui_app, serve_ui
from modelpilot.ui.router import COOKIE, PREFIX, ui_router

__all__ = ["COOKIE", "PREFIX", "create_ui_app", "serve_ui", "ui_router"]
