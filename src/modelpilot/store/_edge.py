"""Edge devices and their aggregate reports (``modelpilot.edge``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from modelpilot.errors import NotFound
from modelpilot.store import schema as t
from modelpilot.store._base import StoreBase, utcnow
from modelpilot.store.records import EdgeDeviceRecord, EdgeReportRecord

_D = t.edge_devices.c
_R = t.edge_reports.c


class UnknownDevice(NotFound):
    """No device with this name is registered."""


def _unknown(device: str) -> UnknownDevice:
    return UnknownDevice(
        f"no edge device named {device!r}; register it with 'modelpilot edge device add {device}'"
    )


class EdgeMixin(StoreBase):
    # ------------------------------------------------------------------ devices

    def add_device(self, device: str, model: str, actor: str = "system") -> EdgeDeviceRecord:
        """Register a device of ``model`` (idempotent for the same model).

        Raises:
            Conflict: the device is registered for another model.
        """
        from modelpilot.errors import Conflict

        with self._db.write() as conn:
            self._ensure_model(conn, model)
            row = conn.execute(sa.select(_D.model).where(_D.device == device)).first()
            if row is not None and row.model != model:
                raise Conflict(f"device {device!r} is registered for model {row.model!r}, not {model!r}")
            if row is None:
                conn.execute(t.edge_devices.insert().values(
                    device=device, model=model, pinned_version=None, version=None, last_seq=0,
                    last_report_at=None, created_at=utcnow(), info={}))
                self._add_event(conn, "edge_device_added", model=model, subject=device, actor=actor)
        return self.get_device(device)

    def get_device(self, device: str) -> EdgeDeviceRecord:
        """The device's record.

        Raises:
            UnknownDevice: no such device.
        """
        with self._db.read() as conn:
            row = conn.execute(sa.select(t.edge_devices).where(_D.device == device)).first()
        if row is None:
            raise _unknown(device)
        return EdgeDeviceRecord(**row._mapping)

    def list_devices(self, model: str | None = None) -> list[EdgeDeviceRecord]:
        """Every device (of ``model``), by name."""
        query = sa.select(t.edge_devices).order_by(_D.device)
        if model is not None:
            query = query.where(_D.model == model)
        with self._db.read() as conn:
            rows = conn.execute(query).all()
        return [EdgeDeviceRecord(**r._mapping) for r in rows]

    def pin_device(self, device: str, version: int | None, actor: str = "system") -> None:
        """Pin a device to ``version`` (None: follow the champion and canaries again).

        Raises:
            UnknownDevice: no such device.
        """
        with self._db.write() as conn:
            model = conn.execute(sa.select(_D.model).where(_D.device == device)).scalar_one_or_none()
            if model is None:
                raise _unknown(device)
            conn.execute(t.edge_devices.update().where(_D.device == device).values(pinned_version=version))
            self._add_event(conn, "edge_device_pinned" if version else "edge_device_unpinned", model=model,
                            subject=device, actor=actor, numbers={"version": version})

    def update_device_info(self, device: str, changes: Mapping[str, Any]) -> None:
        """Merge ``changes`` into the device's ``info`` (numbers in ``changes`` under
        ``"+"`` are added to the counters of that name)."""
        with self._db.write() as conn:
            info = conn.execute(sa.select(_D.info).where(_D.device == device)).scalar_one_or_none()
            if info is None:
                raise _unknown(device)
            new = {**info, **{k: v for k, v in changes.items() if k != "+"}}
            for name, amount in (changes.get("+") or {}).items():
                new[name] = new.get(name, 0) + amount
            conn.execute(t.edge_devices.update().where(_D.device == device).values(info=new))

    # ------------------------------------------------------------------ reports

    def add_edge_report(
        self, device: str, *, version: int, seq: int, rows: int, size: int, payload: Mapping[str, Any],
        window_start: datetime | None = None, window_end: datetime | None = None,
    ) -> int | None:
        """Store one report; None when this device's ``seq`` was stored before (a replay).

        A replay is counted in the device's ``info["duplicates"]`` and changes nothing else.

        Raises:
            UnknownDevice: no such device.
        """
        with self._db.write() as conn:
            row = conn.execute(sa.select(_D.model, _D.last_seq, _D.info).where(_D.device == device)).first()
            if row is None:
                raise _unknown(device)
            stmt = self._db.insert(t.edge_reports).values(
                device=device, model=row.model, version=int(version), seq=int(seq), received_at=utcnow(),
                window_start=window_start, window_end=window_end, rows=int(rows), bytes=int(size),
                payload=dict(payload),
            ).on_conflict_do_nothing(index_elements=["device", "seq"])
            report_id = conn.execute(stmt.returning(_R.id)).scalar_one_or_none()
            info = dict(row.info)
            key = "reports" if report_id is not None else "duplicates"
            info[key] = int(info.get(key, 0)) + 1
            values: dict[str, Any] = {"info": info}
            if report_id is not None:
                info["rows"] = int(info.get("rows", 0)) + int(rows)
                info["bytes"] = int(info.get("bytes", 0)) + int(size)
                values.update(last_seq=max(int(row.last_seq), int(seq)), last_report_at=utcnow(),
                              version=int(version))
            conn.execute(t.edge_devices.update().where(_D.device == device).values(**values))
        return report_id

    def edge_reports(
        self, model: str, *, device: str | None = None, after_id: int = 0, version: int | None = None,
        limit: int = 10_000,
    ) -> list[EdgeReportRecord]:
        """A model's reports with id > ``after_id`` (of one device / version), oldest first."""
        where = [_R.model == model, _R.id > after_id]
        if device is not None:
            where.append(_R.device == device)
        if version is not None:
            where.append(_R.version == version)
        with self._db.read() as conn:
            rows = conn.execute(sa.select(t.edge_reports).where(*where).order_by(_R.id).limit(limit)).all()
        return [EdgeReportRecord(**r._mapping) for r in rows]
