"""Open an HTML report in headless Chromium: screenshot it, dump the rendered DOM, log the network.

    python scripts/screenshot_report.py report.html [--out shot.png] [--width 1280] [--height 2000]

Prints the screenshot path and every URL the page requested besides itself (there should be none).
Used by tests/test_render_html.py; run it by hand to look at a report."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


@dataclass(frozen=True)
class Rendered:
    screenshot: Path
    dom: str
    requests: tuple[str, ...]  # URLs requested other than the report itself


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def render(html: Path, out: Path, width: int = 1280, height: int = 2000) -> Rendered:
    exe = chromium()
    if exe is None:
        raise SystemExit("chromium not found (apt-get install chromium)")
    url = html.resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="tfgate-chromium-") as tmp:
        netlog = Path(tmp) / "net.json"
        base = [exe, *FLAGS, f"--user-data-dir={tmp}/profile"]
        subprocess.run(
            [*base, f"--screenshot={out}", f"--window-size={width},{height}", f"--log-net-log={netlog}", url],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        dom = subprocess.run(
            [*base, "--dump-dom", url], check=True, capture_output=True, timeout=120, text=True
        ).stdout
        requests = _requests(netlog, url)
    return Rendered(out, dom, requests)


def print_pdf(html: Path, out: Path) -> Path:
    """Print the page to PDF as a browser would (print stylesheet applied): what a printout shows."""
    exe = chromium()
    if exe is None:
        raise SystemExit("chromium not found (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="tfgate-chromium-") as tmp:
        subprocess.run(
            [exe, *FLAGS, f"--user-data-dir={tmp}/profile", "--no-pdf-header-footer", f"--print-to-pdf={out}",
             html.resolve().as_uri()],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    return out


def _requests(netlog: Path, own: str) -> tuple[str, ...]:
    """URLs the page requested, from Chromium's net log. Requests a page makes carry its origin as
    `initiator` ("null" for a file:// page); Chromium's own background requests carry "not an origin"."""
    try:
        data = json.loads(netlog.read_text())
    except (OSError, ValueError):
        text = netlog.read_text() if netlog.exists() else ""
        data = json.loads(text.rstrip().rstrip(",") + "]}") if text else {"events": []}
    urls = set()
    for event in data.get("events", []):
        params = event.get("params") or {}
        url, initiator = params.get("url"), params.get("initiator")
        if url and initiator is not None and initiator != "not an origin" and url != own:
            urls.add(url)
    return tuple(sorted(urls))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report", type=Path)
    ap.add_argument("--out", type=Path, default=Path("report.png"))
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=2000)
    args = ap.parse_args()
    shot = render(args.report, args.out, args.width, args.height)
    print(f"screenshot: {shot.screenshot}")
    print(f"network requests besides the report: {list(shot.requests) or 'none'}")


if __name__ == "__main__":
    main()
