"""tfgate guard benchmark: what one agent tool call costs, side by side with `python -c pass`, in one run.

    python bench/guard.py [--runs 31] [--out bench/RESULTS.md]

Each round runs, interleaved (the shared machine's drift hits every variant alike), fresh processes of:
  - `python -c pass` (the floor: interpreter start-up)
  - the `tfgate-guard` console script (what installed hooks run) on allowed tool calls in the documented
    payload shapes: a Claude Code Bash call (`git status && terraform plan -out=p.bin`), a Codex shell call, a
    Claude Code Write of main.tf, a Cursor `beforeShellExecution`; and one blocked call (`terraform destroy`,
    which also writes the audit log)
  - `tfgate guard` through the typer CLI (what hooks ran before the lean entry point)
and reports the median and 90th percentile wall time of each, plus the in-process time of `check_command` over
the guard's test tables. Bytecode is compiled first and children may use it, as in an installed package.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BUDGET_MS = 50.0
CONSOLE = (
    "import sys; from tfgate.agents.hook import main; sys.exit(main())"  # what pip's console script runs
)

WORK = Path(
    tempfile.mkdtemp(prefix="tfgate-bench-guard-")
)  # a Terraform root with a manifest, as agents see it
PAYLOADS = {
    "claude Bash (allowed)": ("claude", {"session_id": "s", "cwd": str(WORK), "hook_event_name": "PreToolUse",
                                         "tool_name": "Bash",
                                         "tool_input": {"command": "git status && terraform plan -out=p.bin"}}),
    "codex shell (allowed)": ("codex", {"session_id": "s", "cwd": str(WORK), "hook_event_name": "PreToolUse",
                                        "tool_name": "Bash", "tool_input": {"command": "npm test -- --watch=false && make build"}}),
    "claude Write (allowed)": ("claude", {"cwd": str(WORK), "hook_event_name": "PreToolUse", "tool_name": "Write",
                                          "tool_input": {"file_path": str(WORK / "main.tf"), "content": "x"}}),
    "cursor shell (allowed)": ("cursor", {"hook_event_name": "beforeShellExecution", "cwd": str(WORK),
                                          "workspace_roots": [str(WORK)], "command": "grep -rn apply docs/"}),
    "claude Bash (blocked)": ("claude", {"cwd": str(WORK), "hook_event_name": "PreToolUse", "tool_name": "Bash",
                                         "tool_input": {"command": "terraform destroy -auto-approve"}}),
}  # fmt: skip


def _run(cmd: list[str], stdin: str, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) milliseconds of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    assert proc.stdin is not None
    proc.stdin.write(stdin.encode())
    proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 2):
        raise SystemExit(f"{cmd} exited {os.waitstatus_to_exitcode(status)}")
    return elapsed * 1000, (usage.ru_utime + usage.ru_stime) * 1000


def _tables_us() -> tuple[float, float, int]:
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "tests"))
    from test_guard import EVASIONS, HARMLESS, TABLE
    from test_guard_ground import EVERYDAY, EXEC_AND_OPAQUE, TAMPERING

    from tfgate.agents.analyzer import check_command

    lines = (
        [c for c, _, _ in TABLE]
        + EVASIONS
        + HARMLESS
        + TAMPERING
        + [c for c, _ in EXEC_AND_OPAQUE]
        + EVERYDAY
    )
    best = []
    for line in lines:
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            check_command(line, str(REPO))
            samples.append(time.perf_counter() - start)
        best.append(min(samples) * 1e6)
    return statistics.median(best), max(best), len(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=31)
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    opts = ap.parse_args()
    compileall.compile_dir(str(REPO / "tfgate"), quiet=1)
    (WORK / "tfgate.yaml").write_text(
        "approvals:\n  allowed_signers: allowed_signers\naudit:\n  log: audit.jsonl\n"
    )
    (WORK / ".tfgate").mkdir()
    (WORK / "main.tf").write_text('resource "terraform_data" "x" {}\n')
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(REPO)
    fd, audit = tempfile.mkstemp(prefix="tfgate-bench-audit-", suffix=".jsonl")
    os.close(fd)
    env["TFGATE_AUDIT_LOG"] = audit
    py = sys.executable
    variants: dict[str, tuple[list[str], str]] = {"python -c pass": ([py, "-c", "pass"], "")}
    for label, (agent, payload) in PAYLOADS.items():
        variants[f"tfgate-guard --agent {agent}: {label}"] = (
            [py, "-c", CONSOLE, "--agent", agent],
            json.dumps(payload),
        )
    variants["tfgate guard (typer CLI): claude Bash (allowed)"] = (
        [py, "-m", "tfgate", "guard"], json.dumps(PAYLOADS["claude Bash (allowed)"][1]))  # fmt: skip
    times: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    for cmd, stdin in variants.values():  # warm-up (bytecode, page cache)
        _run(cmd, stdin, env)
    for _ in range(opts.runs):
        for name, (cmd, stdin) in variants.items():
            wall, used = _run(cmd, stdin, env)
            times[name].append(wall)
            cpu[name].append(used)
    os.unlink(audit)
    shutil.rmtree(WORK)
    median_us, max_us, count = _tables_us()
    floor = statistics.median(times["python -c pass"])
    cpu_floor = statistics.median(cpu["python -c pass"])
    rows = []
    for name, samples in times.items():
        med, used = statistics.median(samples), statistics.median(cpu[name])
        p90 = statistics.quantiles(samples, n=10)[-1]
        rows.append(
            f"| {name} | {med:.1f} | {p90:.1f} | {med - floor:+.1f} | {used:.1f} | {used - cpu_floor:+.1f} |"
        )
    lean = [k for k in times if k.startswith("tfgate-guard") and "(allowed)" in k]
    allowed = max(statistics.median(times[k]) for k in lean)
    allowed_cpu = max(statistics.median(cpu[k]) for k in lean)
    verdict = "within" if allowed <= BUDGET_MS else "OVER"
    cpu_verdict = "within" if allowed_cpu <= BUDGET_MS else "OVER"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = "\n".join([
        "## Guard: one agent tool call (bench/guard.py)",
        "",
        f"`python bench/guard.py --runs {opts.runs}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"Python {platform.python_version()}, {os.cpu_count()} cores, load average {load:.1f} at the end "
        "(a shared machine: read the guard against the `python -c pass` floor of the same run). Fresh processes, "
        f"interleaved, {opts.runs} rounds; bytecode compiled (as an installed package has it).",
        "",
        "| variant | median wall ms | p90 wall ms | wall over `python -c pass` | median CPU ms | CPU over `pass` |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        f"Budget: median <= {BUDGET_MS:.0f} ms per allowed command. Slowest allowed median: wall {allowed:.1f} ms "
        f"({verdict} the budget on this run, floor {floor:.1f} ms), CPU {allowed_cpu:.1f} ms ({cpu_verdict}; CPU "
        "time is roughly what an idle machine's wall time would be, and load inflates it far less). In-process "
        f"`check_command` over the {count} lines of the guard's test tables: median {median_us:.0f} us, "
        f"max {max_us:.0f} us.",
        "",
    ])  # fmt: skip
    print(text)
    if opts.out and opts.out.name:
        old = opts.out.read_text() if opts.out.exists() else ""
        start = old.find("## Guard: one agent tool call")
        if start >= 0:
            end = old.find("\n## ", start + 1)
            old = old[:start] + (old[end + 1 :] if end >= 0 else "")
        opts.out.write_text(old.rstrip() + "\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
