"""Reports in every format, from real Terraform plans; escaping of hostile text; GitHub's size limit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tfgate.model import (
    ApprovalOutcome,
    Change,
    ChangeClass,
    Finding,
    PlanInfo,
    Result,
    Risk,
    Severity,
    Summary,
    Verdict,
    Violation,
)
from tfgate.render import render
from tfgate.render.markdown import LIMIT, marker

PROTECT = "version: 1\nprotect:\n  - name: prod-db\n    match: {address: ['terraform_data.db']}\n"
HOSTILE = '<script>document.title="pwned"</script>`|*_[x](http://127.0.0.1:9/)'


def tfgate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tfgate", *args], cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "html"])
def test_real_plan_in_every_format(scenario, fmt: str) -> None:
    tf, _ = scenario("deleted_block")
    (tf.dir / "tfgate.yaml").write_text(PROTECT)
    proc = tfgate("check", "plan.bin", "--format", fmt, cwd=tf.dir)
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert "terraform_data.db" in out or "terraform\\_data.db" in out
    if fmt == "text":
        assert out.startswith("tfgate: BLOCKED")
        assert out.index("Blocked changes") < out.index("Plan: ")
        assert "\x1b[" not in out
    elif fmt == "markdown":
        assert out.startswith(marker("default"))
        assert "| terraform\\_data.db | delete | prod-db | 1 needed, none valid |" in out
        assert "<details><summary>All other changes" not in out  # web is a no-op: nothing else to list
    elif fmt == "html":
        assert out.startswith("<!DOCTYPE html>") and "tfgate: BLOCKED" in out
        assert "<script" not in out and "http" not in out.split("<body>", 1)[1]
    else:
        assert json.loads(out)["verdict"] == "block"


def test_reports_beside_terminal_output_share_the_exit_code(scenario) -> None:
    tf, _ = scenario("replace_triggers")
    (tf.dir / "tfgate.yaml").write_text(PROTECT)
    proc = tfgate("check", "plan.bin", "--report-md", "r.md", "--report-html", "r.html", "--report-json", "r.json",
                  cwd=tf.dir)  # fmt: skip
    assert proc.returncode == 1
    assert "replace" in (tf.dir / "r.md").read_text()
    assert "tfgate: BLOCKED" in (tf.dir / "r.html").read_text()
    assert json.loads((tf.dir / "r.json").read_text())["violations"][0]["class"] == "replace"


def test_colour_only_when_asked() -> None:
    result = _result([_change("a.b", ChangeClass.DELETE)], blocked=1)
    assert "\x1b[31m" in render(result, "text", color=True)
    assert "\x1b[" not in render(result, "text", color=False)


def test_sensitive_values_never_shown(tf) -> None:
    tf.write('resource "terraform_data" "db" {\n  input = { name = sensitive("s3cr3t-name"), size = 1 }\n}\n')
    tf.apply()
    tf.write("")
    tf.plan()
    (tf.dir / "tfgate.yaml").write_text(PROTECT)
    for fmt in ("text", "json", "markdown", "html"):
        proc = tfgate("check", "plan.bin", "--format", fmt, cwd=tf.dir)
        assert proc.returncode == 1
        assert "s3cr3t" not in proc.stdout, fmt
    assert "s3cr3t" in tf.run("show", "-json", "plan.bin").stdout  # it was in the plan


def _change(address: str, cls: ChangeClass, protected: tuple[str, ...] = (), **kw) -> Change:
    return Change(
        address=address,
        mode="managed",
        type=address.split(".")[-2].split("[")[0],
        name="n",
        module_address=None,
        index=None,
        provider=None,
        actions=(cls.value,),
        change_class=cls,
        protected_by=protected,
        risk=Risk.HIGH if protected else Risk.LOW,
        **kw,
    )


def _result(changes: list[Change], blocked: int = 0, **kw) -> Result:
    violations = tuple(
        Violation(
            address=c.address, rule="rule|x", change_class=c.change_class, reason=f"reason for {c.address}"
        )
        for c in changes[:blocked]
    )
    counts = {k: sum(c.change_class.value == k for c in changes) for k in ("create", "update", "delete")}
    kw.setdefault("findings", ())
    return Result(
        verdict=Verdict.BLOCK if blocked else Verdict.ALLOW,
        plan=PlanInfo(source="p", input_format="show-json", format_version="1.2", terraform_version="1.15.5",
                      digest="sha256:" + "0" * 64),
        summary=Summary(**counts), changes=tuple(changes), violations=violations, **kw,
    )  # fmt: skip


def test_markdown_20000_changes_fits_and_lists_every_blocked_change() -> None:
    changes = [
        _change(f'module.m["k{i}"].aws_db_instance.db[{i}]', ChangeClass.DELETE, ("r",)) for i in range(400)
    ]
    changes += [_change(f'module.big["k{i}"].aws_s3_bucket.b[{i}]', ChangeClass.UPDATE) for i in range(19600)]
    text = render(_result(changes, blocked=400), "markdown")
    assert len(text) <= LIMIT
    for i in range(400):
        assert f'module.m\\["k{i}"\\].aws\\_db\\_instance.db\\[{i}\\]' in text
    assert "Left out to fit GitHub" in text and "19600 other changes" in text


def test_markdown_never_exceeds_limit_even_when_everything_is_blocked() -> None:
    changes = [
        _change(f"aws_db_instance.db_with_a_long_name_{i:06d}", ChangeClass.DELETE, ("r",))
        for i in range(3000)
    ]
    text = render(_result(changes, blocked=3000), "markdown")
    assert len(text) <= LIMIT
    assert "aws\\_db\\_instance.db\\_with\\_a\\_long\\_name\\_000000" in text
    listed = text.count("- delete aws")
    assert 500 < listed < 3000
    assert f"{3000 - listed} more blocked changes not listed" in text  # says what was left out


def test_hostile_text_is_escaped_in_markdown() -> None:
    change = _change(f'aws_s3_bucket.b["{HOSTILE}"]', ChangeClass.DELETE, ("r",), prior=(("name", HOSTILE),))
    result = _result([change], blocked=1, findings=(Finding("x", Severity.WARN, HOSTILE, (("k", HOSTILE),)),),
                     approvals=(ApprovalOutcome(HOSTILE, HOSTILE, False, HOSTILE),))  # fmt: skip
    text = render(result, "markdown")
    assert "<script>" not in text
    assert "[x](http" not in text and "\\[x\\](http" in text  # the link is escaped text, not a link
    for line in text.splitlines():
        if line.startswith("| aws"):
            cells = line.replace("\\|", "").split("|")
            assert len(cells) == 7, line  # 5 cells: the `|` in the key did not add a column
    assert "&lt;script&gt;" in text


def test_hostile_text_is_escaped_in_html() -> None:
    change = _change(
        f'aws_s3_bucket.b["{HOSTILE}"]', ChangeClass.DELETE, ("r",), prior=(("tags", {HOSTILE: HOSTILE}),)
    )
    html = render(_result([change], blocked=1), "html")
    assert "<script>" not in html and "&lt;script&gt;" in html


PROTECT_ALL = (
    "version: 1\nprotect:\n  - name: everything\n    match: {address: ['*']}\n"
    "    actions: [delete, replace, forget]\n"
)


@pytest.mark.parametrize(
    ("name", "plan_args"),
    [
        ("deleted_block", ()),
        ("replace_triggers", ()),
        ("replace_create_before_destroy", ()),
        ("for_each_in_module", ()),
        ("count_decrease", ()),
        ("removed_forget", ()),
        ("moved", ()),
        ("no_op", ()),
        ("no_op", ("-destroy",)),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, tuple) else v,
)
def test_every_real_scenario_in_every_format(scenario, name: str, plan_args: tuple[str, ...]) -> None:
    """Each real-Terraform scenario of the core issue, rendered in all four formats at once: every change
    Terraform plans to destroy, replace or forget is in every report, and the exit code matches."""
    import html as html_lib

    tf, plan = scenario(name, *plan_args)
    (tf.dir / "tfgate.yaml").write_text(PROTECT_ALL)
    shown = tf.show_json(plan)
    lost = {
        rc["address"]
        for rc in shown.get("resource_changes", [])
        if rc["mode"] == "managed" and set(rc["change"]["actions"]) & {"delete", "forget"}
    }
    proc = tfgate("check", "plan.bin", "--report-md", "r.md", "--report-html", "r.html", "--report-json", "r.json",
                  cwd=tf.dir)  # fmt: skip
    assert proc.returncode == (1 if lost else 0), proc.stderr
    md = (tf.dir / "r.md").read_text().replace("\\", "")
    page = html_lib.unescape((tf.dir / "r.html").read_text())
    doc = json.loads((tf.dir / "r.json").read_text())
    assert {v["address"] for v in doc["violations"]} == lost
    for address in lost:
        assert address in proc.stdout and address.replace("\\", "") in md and address in page, address
    assert len(md) <= LIMIT
    assert ("tfgate: BLOCKED" if lost else "tfgate: ALLOWED") in page


def test_colour_on_a_terminal_only_and_never_with_no_color(scenario) -> None:
    """Run in a real pseudo-terminal: colour there; plain with NO_COLOR; plain when piped (checked above)."""
    import os
    import pty

    tf, _ = scenario("deleted_block")
    (tf.dir / "tfgate.yaml").write_text(PROTECT)

    def on_tty(extra_env: dict[str, str]) -> bytes:
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | extra_env
        leader, follower = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "tfgate", "check", "plan.bin"], cwd=tf.dir, env=env,
                                stdout=follower, stderr=follower, stdin=subprocess.DEVNULL)  # fmt: skip
        os.close(follower)
        out = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        proc.wait(timeout=60)
        os.close(leader)
        assert proc.returncode == 1
        return out

    assert b"\x1b[" in on_tty({})
    plain = on_tty({"NO_COLOR": "1"})
    assert b"\x1b[" not in plain and b"tfgate: BLOCKED" in plain
