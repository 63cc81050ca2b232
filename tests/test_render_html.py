"""The HTML report in a real headless Chromium: no network, the verdict and blocked addresses visible."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
from screenshot_report import chromium, print_pdf, render

pytestmark = [pytest.mark.slow, pytest.mark.skipif(chromium() is None, reason="chromium not installed")]

PROTECT = "version: 1\nprotect:\n  - name: prod-db\n    match: {address: ['*db*']}\n"


def _report(tf, keys: list[str]) -> Path:
    items = ", ".join(f'"{k}"' for k in keys)
    tf.write(f'resource "terraform_data" "db" {{\n  for_each = toset([{items}])\n  input = each.key\n}}\n')
    tf.apply()
    tf.write("")
    tf.plan()
    (tf.dir / "tfgate.yaml").write_text(PROTECT)
    proc = subprocess.run([sys.executable, "-m", "tfgate", "check", "plan.bin", "--report-html", "r.html"],
                          cwd=tf.dir, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    return tf.dir / "r.html"


def test_html_in_chromium(tf, tmp_path: Path) -> None:
    hostile = "<script>document.title='pwned'</script>"
    report = _report(tf, ["orders", hostile.replace('"', "'")])
    shot = render(report, tmp_path / "report.png", 1280, 1600)
    assert shot.requests == ()
    assert shot.screenshot.stat().st_size > 10_000
    assert "<title>tfgate: BLOCKED (default)</title>" in shot.dom  # the injected script did not run
    assert "tfgate: BLOCKED" in shot.dom
    assert 'terraform_data.db["orders"]' in shot.dom
    assert "terraform_data.db[\"&lt;script&gt;document.title='pwned'&lt;/script&gt;\"]" in shot.dom
    # Phone width renders too.
    assert render(report, tmp_path / "phone.png", 390, 1400).requests == ()


def test_printout_shows_the_verdict_blocked_changes_and_the_full_list(tf, tmp_path: Path) -> None:
    """What Chromium really draws when printing (text extracted from its PDF), not only what the DOM holds:
    the verdict, the blocked addresses and every row of the change list (the filter checkboxes are hidden)."""
    from pypdf import PdfReader

    report = _report(tf, ["orders", "payments"])
    pdf = print_pdf(report, tmp_path / "report.pdf")
    text = " ".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "tfgate: BLOCKED" in text
    assert "Blocked: protected changes" in text
    for key in ("orders", "payments"):
        assert text.count(f'terraform_data.db["{key}"]') >= 2, text  # blocked table and full change list
    assert "All changes" in text


def test_network_detector_sees_requests(tmp_path: Path) -> None:
    """Positive control: a page that does load something is caught, so the check above can fail."""
    page = tmp_path / "leaky.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png">hi</body></html>')
    assert render(page, tmp_path / "leaky.png", 400, 300).requests == ("http://127.0.0.1:9/x.png",)
