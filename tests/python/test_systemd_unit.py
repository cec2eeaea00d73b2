"""The shipped systemd unit (config/fixcurve.service): valid for systemd, and sandboxed well
enough that `systemd-analyze security` rates it OK or better (exposure at most 2.0)."""

import re
import shutil
import subprocess

import pytest

from conftest import BIN, ROOT

UNIT = ROOT / "config" / "fixcurve.service"
needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze not installed (Debian package systemd)")


@needs_systemd
def test_unit_verifies(tmp_path):
    unit = tmp_path / "fixcurve.service"
    # the unit names the installed binary; verify checks that ExecStart exists
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/fixcurve", BIN))
    cp = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert cp.returncode == 0 and cp.stderr.strip() == "", cp.stderr


@needs_systemd
def test_unit_exposure_is_ok_or_better():
    cp = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(UNIT)],
                        capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", cp.stdout)
    assert m, cp.stdout + cp.stderr
    level, verdict = float(m.group(1)), m.group(2)
    assert level <= 2.0 and verdict in ("OK", "SAFE"), f"{level} {verdict}\n{cp.stdout}"
    # the properties the sandbox is built on, each rated as passed
    for prop in ("NoNewPrivileges=", "ProtectSystem=", "SystemCallFilter=~@privileged",
                 "PrivateDevices=", "RestrictAddressFamilies=~AF_PACKET"):
        line = next((l for l in cp.stdout.splitlines() if prop in l), "")
        assert line.lstrip().startswith("✓"), f"{prop}: {line!r}"
    text = UNIT.read_text()
    assert re.search(r"^CapabilityBoundingSet=\s*$", text, re.M), "capability set not empty"
    assert "User=fixcurve" in text and "StateDirectory=fixcurve" in text
