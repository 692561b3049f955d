"""JUnit XML for CI systems: one ``<testcase>`` per check of a ``modelpilot check`` command.

GitHub Actions (through a test-report action), GitLab CI (``artifacts:reports:junit``),
Jenkins and Azure Pipelines read this format: a failed check is a ``<failure>`` whose message
is the check's message and whose text adds its fix and numbers; a check that did not apply
(``off``) is ``<skipped>``; a warning passes, with the warning in ``<system-out>``.
"""

from __future__ import annotations

import json
import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from modelpilot.integrations.checks import CheckReport


def junit_xml(report: CheckReport) -> ET.ElementTree[ET.Element]:
    """The report as a ``<testsuites>`` document with one ``<testsuite>``."""
    failures = sum(c.status == "fail" for c in report.checks)
    skipped = sum(c.status == "off" for c in report.checks)
    total = sum(report.seconds)
    root = ET.Element("testsuites", name="modelpilot check", tests=str(len(report.checks)),
                      failures=str(failures), errors="0", skipped=str(skipped), time=f"{total:.3f}")
    suite = ET.SubElement(root, "testsuite", name=f"modelpilot check {report.suite}", tests=str(len(report.checks)),
                          failures=str(failures), errors="0", skipped=str(skipped), time=f"{total:.3f}")
    for check, seconds in zip(report.checks, report.seconds, strict=True):
        case = ET.SubElement(suite, "testcase", classname=f"modelpilot.check.{report.suite}", name=check.name,
                             time=f"{seconds:.3f}")
        if check.status == "fail":
            failure = ET.SubElement(case, "failure", message=check.message, type="CheckFailed")
            details = [check.message]
            if check.fix:
                details.append(f"fix: {check.fix}")
            if check.numbers:
                details.append(json.dumps(check.numbers, default=str, sort_keys=True))
            failure.text = "\n".join(details)
        elif check.status == "off":
            ET.SubElement(case, "skipped", message=check.message)
        else:
            out = ET.SubElement(case, "system-out")
            out.text = ("warning: " if check.status == "warn" else "") + check.message
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(report: CheckReport, path: Path) -> Path:
    """Write the report's JUnit XML to ``path`` (folders created; replaced atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            junit_xml(report).write(f, encoding="utf-8", xml_declaration=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
