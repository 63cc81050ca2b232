"""tfgate benchmark: gate time and memory against baselines, side by side, on the same files.

    python bench/run.py [--sizes 1000,10000,100000] [--runs 5] [--rego-max 10000] [--out bench/RESULTS.md]
                        [--monorepo 10000,100000] [--only-monorepo] [--skip-plan]

Measures (median of --runs, wall time and peak RSS of each child process via os.wait4):
  - `tfgate check PLAN --manifest bench/manifest-50.yaml --format json --no-state-checks`, show-json and stream forms
  - `python -c 'import json; json.load(open(F))'`
  - `jq '[.resource_changes[] | select(.change.actions | index("delete"))] | length' F`
  - the equivalent Rego policy (bench/policy.rego) evaluated with regopy (bench/rego_eval.py), up to --rego-max
  - start-up: `tfgate --version` and `tfgate check` on a 10-change plan
  - `tfgate plan` against plain `terraform plan -out` + `terraform show -json` on a real 1,000-resource
    terraform_data configuration, embedded Terraform
and, on plans shaped like a big monorepo (bench/gen_monorepo.py; --monorepo sizes, shape options as there),
interleaved run by run so that the shared machine's drift hits every tool alike:
  - `tfgate check` (as above), the jq filter, json.load and the msgspec floor (bench/floor.py)
and writes Markdown tables with the targets of issues 8 and 16 to --out.
"""

from __future__ import annotations

import argparse
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
OUT = HERE / "out"
MANIFEST = HERE / "manifest-50.yaml"
sys.path.insert(0, str(HERE))


def measure(
    cmd: list[str], runs: int, cwd: Path | None = None, ok: tuple[int, ...] = (0,)
) -> tuple[float, float, float]:
    """Median wall seconds, peak RSS (MB) and CPU seconds (user + system) of `cmd` over `runs` runs."""
    walls, rss, cpu = [], [], []
    env = {k: v for k, v in os.environ.items() if k != "TF_CLI_CONFIG_FILE"}
    env["TFGATE_AUDIT_LOG"] = str(OUT / "audit.jsonl")
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - start)
        code = os.waitstatus_to_exitcode(status)
        if code not in ok:
            err = proc.stderr.read().decode(errors="replace")[-500:] if proc.stderr else ""
            raise SystemExit(f"{' '.join(cmd)} exited {code}: {err}")
        if proc.stderr:
            proc.stderr.close()
        rss.append(usage.ru_maxrss / 1024)
        cpu.append(usage.ru_utime + usage.ru_stime)
    return statistics.median(walls), statistics.median(rss), statistics.median(cpu)


def tfgate_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "tfgate", *args]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    except OSError:
        mem = 0
    return (
        f"{os.cpu_count()} cores, {cpu}, {mem:.0f} GiB RAM, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def in_child(fn: object, *args: object) -> None:
    """Run a plan generator in a fresh interpreter. The peak RSS (ru_maxrss) of every process this harness
    starts begins at the harness's own size when it forks, so a large plan built in this process would be
    counted in every tool's RSS."""
    import multiprocessing

    proc = multiprocessing.get_context("spawn").Process(target=fn, args=args)
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise SystemExit(f"plan generator failed (exit {proc.exitcode})")


def ensure_plans(sizes: list[int]) -> None:
    from gen_plans import write

    for n in sizes:
        if not (OUT / f"plan-{n}.json").exists() or not (OUT / f"plan-{n}.jsonl").exists():
            print(f"generating {n} changes...", flush=True)
            in_child(write, n, OUT)
    small = OUT / "plan-10.json"
    if not small.exists():
        in_child(write, 10, OUT)


def agreement(show: Path) -> tuple[int, int]:
    """Protected addresses flagged by tfgate (destroy/replace/forget, as the Rego policy has no safety nets)
    and by the Rego policy on the same plan: the baseline is only fair if both give the same answer."""
    env = {**os.environ, "TFGATE_AUDIT_LOG": str(OUT / "audit.jsonl")}
    out = subprocess.run(
        tfgate_cmd("check", str(show), "--manifest", str(MANIFEST), "--format", "json", "--no-state-checks"),
        capture_output=True,
        env=env,
    ).stdout
    gate = {
        v["address"] for v in json.loads(out)["violations"] if v["class"] in ("delete", "replace", "forget")
    }
    rego = subprocess.run(
        [sys.executable, str(HERE / "rego_eval.py"), str(show), str(MANIFEST)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return len(gate), int(rego)


def gate_vs_baselines(sizes: list[int], runs: int, rego_max: int) -> tuple[list[list[str]], dict]:
    rows, facts = [], {}
    have_jq = shutil.which("jq") is not None
    for n in sizes:
        show, stream = OUT / f"plan-{n}.json", OUT / f"plan-{n}.jsonl"
        mb = show.stat().st_size / 1e6
        check = ["check", "--manifest", str(MANIFEST), "--format", "json", "--no-state-checks"]
        t_show = measure(tfgate_cmd(*check[:1], str(show), *check[1:]), runs, ok=(0, 1))
        t_stream = measure(tfgate_cmd(*check[:1], str(stream), *check[1:]), runs, ok=(0, 1))
        t_json = measure([sys.executable, "-c", f"import json; json.load(open({str(show)!r}))"], runs)
        t_jq = (
            measure(
                [
                    "jq",
                    '[.resource_changes[] | select(.change.actions | index("delete"))] | length',
                    str(show),
                ],
                runs,
            )
            if have_jq
            else None
        )
        t_rego = None
        if n <= rego_max:
            t_rego = measure(
                [sys.executable, str(HERE / "rego_eval.py"), str(show), str(MANIFEST)], max(1, runs // 2)
            )
        facts[n] = {"show": t_show, "stream": t_stream, "json": t_json, "jq": t_jq, "rego": t_rego, "mb": mb}
        if t_rego:
            facts[n]["agree"] = agreement(show)

        def cell(t: tuple[float, float] | None) -> str:
            return "n/a" if t is None else f"{t[0]:.2f} s / {t[1]:.0f} MB"

        def ratio(t: tuple[float, float] | None, gate: float = t_show[0]) -> str:
            return "n/a" if t is None else f"{gate / t[0]:.2f}"

        rows.append(
            [
                f"{n:,}",
                f"{mb:.0f} MB",
                cell(t_show),
                cell(t_stream),
                cell(t_json),
                cell(t_jq),
                cell(t_rego),
                ratio(t_json),
                ratio(t_jq),
                ratio(t_rego),
            ]
        )
        print(" | ".join(rows[-1]), flush=True)
    return rows, facts


JQ_FILTER = '[.resource_changes[] | select(.change.actions | index("delete"))] | length'


def interleaved(
    cmds: dict[str, tuple[list[str], tuple[int, ...]]], runs: int, cwds: dict[str, Path] | None = None
) -> dict[str, tuple[float, float, float]]:
    """Median wall seconds, peak RSS (MB) and CPU seconds of each command, one run of each in turn per round."""
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, (cmd, ok) in cmds.items():
            samples[name].append(measure(cmd, 1, cwd=(cwds or {}).get(name), ok=ok))
    return {
        name: tuple(statistics.median(x[i] for x in s) for i in range(3))  # type: ignore[misc]
        for name, s in samples.items()
    }


def monorepo(
    sizes: list[int], runs: int, shape: object, baseline: Path | None = None
) -> tuple[list[str], dict]:
    """tfgate check, jq, json.load and the msgspec floor on monorepo-shaped plans, interleaved; with
    `baseline` (a directory holding an older tfgate package) its `tfgate check` too, in the same rounds."""
    from gen_monorepo import write

    facts: dict = {}
    rows = []
    for n in sizes:
        path = OUT / f"monorepo-{n}.json"
        if not path.exists():
            print(f"generating a {n}-change monorepo plan...", flush=True)
            in_child(write, n, OUT, shape)
        f = str(path)
        cmds = {
            "tfgate": (
                tfgate_cmd("check", f, "--manifest", str(MANIFEST), "--format", "json", "--no-state-checks"),
                (0, 1),
            ),
            # The same check in one process (no split: tfgate/plan/changes.py), in the same rounds.
            "one": (
                [
                    "env",
                    "TFGATE_SPLIT=0",
                    *tfgate_cmd(
                        "check", f, "--manifest", str(MANIFEST), "--format", "json", "--no-state-checks"
                    ),
                ],
                (0, 1),
            ),
            "jq": (["jq", JQ_FILTER, f], (0,)),
            "json": ([sys.executable, "-c", f"import json; json.load(open({f!r}))"], (0,)),
            "floor": ([sys.executable, str(HERE / "floor.py"), f], (0,)),
        }
        if shutil.which("jq") is None:
            del cmds["jq"]
        if baseline is not None:  # `python -m tfgate` run in the baseline's directory imports its package
            cmds["baseline"] = (cmds["tfgate"][0], (0, 1))
        t = interleaved(cmds, runs, {"baseline": baseline} if baseline else None)
        mb = path.stat().st_size / 1e6
        facts[n] = {**t, "mb": mb}
        gate = t["tfgate"][0]
        cells = [
            f"{t[k][0]:.2f} s / {t[k][1]:.0f} MB" if k in t else "n/a"
            for k in ("tfgate", "jq", "json", "floor")
        ]
        ratios = [f"{gate / t[k][0]:.2f}" if k in t else "n/a" for k in ("jq", "json", "floor")]
        rows.append(
            f"| {n:,} | {mb:.0f} MB | " + " | ".join(cells + ratios) + f" | {t['tfgate'][1] / mb:.2f} |"
        )
        if baseline is not None:
            b = t["baseline"]
            rows[-1] += (
                f" baseline {b[0]:.2f} s / {b[1]:.0f} MB ({b[0] / t['jq'][0]:.2f}x jq, "
                f"{b[0] / t['floor'][0]:.2f}x floor) |"
                if "jq" in t
                else f" baseline {b[0]:.2f} s / {b[1]:.0f} MB |"
            )
        one = t["one"]
        rows[-1] += (
            f" {one[0]:.2f} s / {one[1]:.0f} MB ({one[0] / t['floor'][0]:.2f}x floor, CPU {one[2]:.2f} s) |"
        )
        print(rows[-1], flush=True)
    return rows, facts


def monorepo_targets(facts: dict, start: dict[str, float]) -> list[str]:
    """The targets of issue 16 against what was measured."""

    def verdict(ok: bool, value: float, limit: float) -> str:
        return "pass" if ok else f"**FAIL** (by {value / limit - 1:.0%})"

    out = ["| target | measured | result |", "| --- | --- | --- |"]
    big = max(facts)
    f = facts[big]
    gate = f["tfgate"][0]
    if "jq" in f:
        r = gate / f["jq"][0]
        out.append(f"| {big:,}: tfgate ≤ 0.5x jq | {r:.2f}x | {verdict(r <= 0.5, r, 0.5)} |")
    r = gate / f["floor"][0]
    c = f["tfgate"][2] / f["floor"][2]
    out.append(
        f"| {big:,}: tfgate ≤ 2.5x the msgspec floor | {r:.2f}x wall ({c:.2f}x CPU) | {verdict(r <= 2.5, r, 2.5)} |"
    )
    r = f["tfgate"][1] / f["mb"]
    out.append(
        f"| {big:,}: peak RSS ≤ 1.5x the file | {f['tfgate'][1]:.0f} MB for {f['mb']:.0f} MB ({r:.2f}x) "
        f"| {verdict(r <= 1.5, r, 1.5)} |"
    )
    small = min(facts)
    if small != big:
        grow = gate / facts[small]["tfgate"][0]
        limit = 1.2 * big / small
        out.append(
            f"| linear: {big:,} ≤ {limit:.0f}x {small:,} | {grow:.1f}x | {verdict(grow <= limit, grow, limit)} |"
        )
    for key, what, limit in (
        ("check10", "`tfgate check` on 10 changes", 0.15),
        ("version", "`tfgate --version`", 0.08),
    ):
        w, c = start[key], start[f"{key}_cpu"]
        out.append(
            f"| start-up: {what} ≤ {limit} s | wall {w:.3f} s, CPU {c:.3f} s "
            f"| wall {verdict(w <= limit, w, limit)}, CPU {verdict(c <= limit, c, limit)} |"
        )
    return out


def startup(runs: int, baseline: Path | None = None) -> dict[str, float]:
    """`tfgate --version`; `tfgate check` on a 10-change plan without state checks, and with them in a real
    Terraform working directory (a declared local backend with applied state: backend, state, backup and
    ledger are all read, and the ledger written); with `baseline`, its check without state checks too, in
    the same rounds."""
    # Byte-compile tfgate first, as `pip install` does for an installed package (an editable install under
    # PYTHONDONTWRITEBYTECODE would otherwise recompile every module on every start).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "tfgate")], check=True)
    work = Path(tempfile.mkdtemp(prefix="tfgate-bench-wd-"))
    env_tf = {k: v for k, v in os.environ.items() if k != "TF_CLI_CONFIG_FILE"}
    (work / "main.tf").write_text(
        'terraform {\n  backend "local" {\n    path = "terraform.tfstate"\n  }\n}\n'
        'resource "terraform_data" "r" {\n  input = "v1"\n}\n'
    )
    tf = [sys.executable, "-m", "tfgate.plan.embedded"]
    subprocess.run([*tf, "init", "-input=false"], cwd=work, check=True, capture_output=True, env=env_tf)
    subprocess.run([*tf, "apply", "-auto-approve"], cwd=work, check=True, capture_output=True, env=env_tf)
    check10 = ["check", str(OUT / "plan-10.json"), "--manifest", str(MANIFEST)]
    samples: dict[str, list[tuple[float, float, float]]] = {"version": [], "check10": [], "check10_state": []}
    if baseline is not None:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(baseline / "tfgate")], check=True)
        samples["baseline_check10"] = []
    for _ in range(runs):  # interleaved, as the machine's speed drifts
        samples["version"].append(measure(tfgate_cmd("--version"), 1))
        samples["check10"].append(measure(tfgate_cmd(*check10, "--no-state-checks"), 1, ok=(0, 1)))
        samples["check10_state"].append(measure(tfgate_cmd(*check10), 1, cwd=work, ok=(0, 1)))
        if baseline is not None:  # `python -m tfgate` in the baseline's directory imports its package
            cmd = tfgate_cmd(*check10, "--no-state-checks")
            samples["baseline_check10"].append(measure(cmd, 1, cwd=baseline, ok=(0, 1)))
    # Wall time, and CPU time (what a quiet machine's wall time would be: load does not inflate it).
    out = {k: statistics.median(t[0] for t in v) for k, v in samples.items()}
    out.update({f"{k}_cpu": statistics.median(t[2] for t in v) for k, v in samples.items()})
    shutil.rmtree(work, ignore_errors=True)
    return out


def plan_overhead(runs: int, resources: int = 1000) -> dict[str, float]:
    """tfgate plan vs terraform plan -out + show -json on a real terraform_data configuration."""
    work = Path(tempfile.mkdtemp(prefix="tfgate-bench-"))
    tf = [sys.executable, "-m", "tfgate.plan.embedded"]
    (work / "main.tf").write_text(
        f'resource "terraform_data" "r" {{\n  count = {resources}\n  input = {{ index = count.index, v = "1" }}\n}}\n'
    )
    env_tf = {k: v for k, v in os.environ.items() if k != "TF_CLI_CONFIG_FILE"}
    subprocess.run([*tf, "init", "-input=false"], cwd=work, check=True, capture_output=True, env=env_tf)
    subprocess.run(
        [*tf, "apply", "-auto-approve", "-input=false"], cwd=work, check=True, capture_output=True, env=env_tf
    )
    # Every resource gets an update: the plan has 1,000 changes to show and check.
    (work / "main.tf").write_text((work / "main.tf").read_text().replace('v = "1"', 'v = "2"'))
    script = work / "plain.sh"
    script.write_text(
        f'set -e\n"{sys.executable}" -m tfgate.plan.embedded plan -out=p.bin -input=false >/dev/null\n'
        f'"{sys.executable}" -m tfgate.plan.embedded show -json p.bin >/dev/null\n'
    )
    # Interleaved, one run of each at a time: drift in the machine's speed hits both sides alike.
    plain_runs, gated_runs = [], []
    for _ in range(runs):
        plain_runs.append(measure(["sh", str(script)], 1, cwd=work)[0])
        gated_runs.append(
            measure(
                tfgate_cmd("plan", str(work), "--terraform", "embedded", "--out", str(work / "gate-out")),
                1,
                cwd=work,
                ok=(0, 1),
            )[0]
        )
    plain, gated = statistics.median(plain_runs), statistics.median(gated_runs)
    shutil.rmtree(work, ignore_errors=True)
    return {"plain": plain, "gated": gated}


def generated_section(
    sizes: list[int], rows: list[list[str]], facts: dict, start: dict[str, float], over: dict | None, how: str
) -> list[str]:
    """The issue 8 table and targets, on bench/gen_plans.py plans."""
    lines = [
        "## Generated plans (issue 8)",
        "",
        how,
        "",
        "| changes | show-json size | tfgate check (show-json) | tfgate check (stream) | json.load | jq filter | Rego (regopy) | tfgate/json.load | tfgate/jq | tfgate/Rego |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]
    if over:
        pct = (over["gated"] / over["plain"] - 1) * 100
        lines.append(
            f"`tfgate plan` on a real 1,000-resource terraform_data configuration (embedded Terraform, every resource "
            f"updated): {over['gated']:.2f} s against {over['plain']:.2f} s for `terraform plan -out` + `show -json` "
            f"({pct:+.1f}%)."
        )
    lines += ["", "### Targets (issue 8)", "", "| target | measured | result |", "| --- | --- | --- |"]

    def verdict(ok: bool) -> str:
        return "pass" if ok else "**FAIL**"

    big = max(sizes)
    f = facts[big]
    if f["jq"]:
        r = f["show"][0] / f["jq"][0]
        lines.append(f"| {big:,}: tfgate ≤ 0.5x jq | {r:.2f}x | {verdict(r <= 0.5)} |")
    rego_n = max((n for n in sizes if facts[n]["rego"]), default=None)
    if rego_n:
        r = facts[rego_n]["show"][0] / facts[rego_n]["rego"][0]
        lines.append(f"| {rego_n:,}: tfgate ≤ 0.1x Rego | {r:.3f}x | {verdict(r <= 0.1)} |")
    rss_ratio = f["show"][1] / f["mb"]
    lines.append(
        f"| {big:,}: peak RSS ≤ 2x plan size | {f['show'][1]:.0f} MB for {f['mb']:.0f} MB ({rss_ratio:.2f}x) | {verdict(rss_ratio <= 2)} |"
    )
    lines.append(
        f"| stream no slower than show-json | {f['stream'][0]:.2f} s vs {f['show'][0]:.2f} s | {verdict(f['stream'][0] <= f['show'][0])} |"
    )
    if 10000 in facts and big == 100000:
        r = facts[100000]["show"][0] / facts[10000]["show"][0]
        lines.append(f"| linear: 100k ≤ 12x 10k | {r:.1f}x | {verdict(r <= 12)} |")
    worst = max(start["check10"], start["check10_state"])
    lines.append(
        f"| start-up: check on 10 changes ≤ 0.25 s (with state checks) | {worst:.3f} s | {verdict(worst <= 0.25)} |"
    )
    if over:
        lines.append(f"| `tfgate plan` adds ≤ 10% | {pct:+.1f}% | {verdict(pct <= 10)} |")
    for n in sizes:
        if "agree" in facts[n]:
            g, r = facts[n]["agree"]
            lines.append(
                f"| {n:,}: same answer as the Rego policy | tfgate {g}, Rego {r} protected addresses | {verdict(g == r)} |"
            )
    lines += [
        "",
        "Notes: the Rego baseline (bench/policy.rego: the same rules, catalog classes and tag matches, no",
        "safety-net updates) is evaluated by regopy in chunks of 2,000 resource changes, because regopy 1.5",
        "fails on larger inputs; it is measured up to --rego-max changes (about 15 s at 10,000, so minutes at",
        "100,000). tfgate's wall time includes interpreter start-up and writing the JSON report to /dev/null.",
        "The generated show-json plans list their changes sorted by address, as `terraform show -json` does;",
        "tfgate hashes them for the plan digest as they come (a document in another order costs one more pass).",
    ]
    return lines


def kept_sections(path: Path, lines: list[str]) -> str:
    """The `## ` sections of an existing results file that this run does not write (other benchmarks, such
    as bench/guard.py, keep theirs there)."""
    if not path.exists():
        return ""
    ours = {line for line in lines if line.startswith("## ")}
    out, keep = [], False
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            keep = line not in ours and line != "## Targets (issue 8)"  # the pre-issue-16 layout's section
        if keep:
            out.append(line)
    return ("\n" + "\n".join(out) + "\n") if out else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rego-max", type=int, default=10000)
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument("--skip-plan", action="store_true", help="skip the tfgate plan overhead measurement")
    ap.add_argument(
        "--monorepo", default="10000,100000", help="sizes of the monorepo-shaped plans ('' for none)"
    )
    ap.add_argument("--only-monorepo", action="store_true", help="only the monorepo plans and start-up")
    ap.add_argument(
        "--baseline",
        type=Path,
        help="directory with an older tfgate package (e.g. `git archive REV tfgate rules | tar -x -C DIR`): "
        "its check is measured on the monorepo plans in the same rounds",
    )
    from gen_monorepo import shape_args, shape_of

    shape_args(ap)
    args = ap.parse_args()
    command = "python bench/run.py " + " ".join(sys.argv[1:])
    load_start = os.getloadavg()[0]
    mono_sizes = [int(s) for s in args.monorepo.split(",") if s]
    mono_rows, mono = (
        monorepo(mono_sizes, args.runs, shape_of(args), args.baseline) if mono_sizes else ([], {})
    )
    sizes: list[int] = []
    rows: list[list[str]] = []
    facts: dict = {}
    if not args.only_monorepo:
        sizes = [int(s) for s in args.sizes.split(",")]
        ensure_plans(sizes)
        rows, facts = gate_vs_baselines(sizes, args.runs, args.rego_max)
    ensure_plans([])
    start = startup(args.runs, args.baseline)
    over = None if args.skip_plan or args.only_monorepo else plan_overhead(max(11, args.runs))
    lines = [
        "# Benchmark results",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on: {machine()}.",
        f"Command: `{command}` (medians of {args.runs} runs; wall time / peak RSS of the child process).",
        f"Load average {load_start:.1f} at the start and {os.getloadavg()[0]:.1f} at the end (the machine is "
        "shared: compare the tools measured in the same rounds, not runs on different days).",
        "",
        f"Start-up (interleaved, wall / CPU): `tfgate --version` {start['version']:.3f} / "
        f"{start['version_cpu']:.3f} s; `tfgate check` on a 10-change plan {start['check10']:.3f} / "
        f"{start['check10_cpu']:.3f} s without state checks, {start['check10_state']:.3f} / "
        f"{start['check10_state_cpu']:.3f} s with them in a Terraform working directory (declared local "
        "backend, applied state, ledger). The large-plan timings use `--no-state-checks`."
        + (
            f" Baseline `tfgate check` on the 10-change plan in the same rounds: {start['baseline_check10']:.3f} / "
            f"{start['baseline_check10_cpu']:.3f} s."
            if "baseline_check10" in start
            else ""
        ),
        "",
    ]
    if mono:
        shape = shape_of(args)
        lines += [
            "## Monorepo-shaped plans (issue 16)",
            "",
            f"bench/gen_monorepo.py: {shape.noop_share:.0%} no-ops with full before/after, "
            f"{shape.nested_share:.0%} in nested module instances {shape.depth} deep, {shape.keys} for_each keys, "
            f"tags everywhere, {shape.value_bytes} bytes per object value, unique addresses. Each round runs every "
            "tool once, in turn (interleaved), so the shared machine's drift hits all alike.",
            "",
            "| changes | size | tfgate check | jq filter | json.load | msgspec floor | tfgate/jq | tfgate/json.load "
            "| tfgate/floor | tfgate RSS/file |"
            + (" baseline tfgate check |" if args.baseline else "")
            + " tfgate check in one process (`TFGATE_SPLIT=0`) |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
            + (" ---: |" if args.baseline else "")
            + " ---: |",
            *mono_rows,
            "",
            "### Targets (issue 16)",
            "",
            *monorepo_targets(mono, start),
            "",
            "The floor (bench/floor.py) reads the file and decodes only address, type, mode, actions, reason,",
            "previous address and prior tags, then counts protected destroys; tfgate also checks the whole",
            "document's UTF-8, validates every address against its fields, classifies every change, checks",
            "safety nets on updates, hashes every change's values (sha256) for the plan digest, evaluates 50",
            "rules and writes the JSON report. Its peak RSS counts the mapped plan file: pages already read are",
            "handed back to the kernel while the changes are classified (they stay in the page cache).",
            "",
        ]
    if facts:
        how = f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC with `{command}` (see the top for the machine)."
        lines += generated_section(sizes, rows, facts, start, over, how)
    text = "\n".join(lines) + "\n" + kept_sections(args.out, lines)
    args.out.write_text(text)
    print(text)
    results = {
        "generated": {str(k): v for k, v in facts.items()},
        "monorepo": {str(k): v for k, v in mono.items()},
    }
    (OUT / "results.json").write_text(json.dumps({**results, "startup": start}, indent=1))


if __name__ == "__main__":
    main()
