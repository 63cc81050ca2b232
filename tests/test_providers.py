"""Protected mode's provider installation (tfgate.enforce.providers) with real Terraform, offline: a fake
provider package in a packed filesystem mirror, its `zh:` hash in the plan's lock file. A fake provider cannot
serve a plan, so the plan here is a saved plan's archive layout (tfconfig/, lock file, states) written by the
test; tests/test_protect.py applies real plans end to end."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import zipfile
from pathlib import Path

import pytest

from tfgate.enforce import providers
from tfgate.errors import TfgateError

REAL_TERRAFORM = Path("/usr/local/bin/terraform")
FAKE = "registry.terraform.io/tfgate/fake"
PACKAGE = b"#!/bin/sh\necho 'the real fake provider'\n"
TERRAFORMS = [pytest.param([sys.executable, "-m", "tfgate.plan.embedded"], id="embedded")]
if REAL_TERRAFORM.exists():
    TERRAFORMS.append(pytest.param([str(REAL_TERRAFORM)], id="terraform-1.11"))
ROOT_TF = 'module "child" {\n  source = "./modules/child"\n}\nresource "terraform_data" "x" {}\n'
CHILD_TF = """
terraform {
  required_providers {
    myfake = { source = "tfgate/fake" }
  }
}
resource "myfake_thing" "t" {}
"""


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def _mirror(where: Path, package: bytes = PACKAGE) -> tuple[Path, str]:
    """A packed filesystem mirror holding tfgate/fake 1.0.0; returns it and the package's `zh:` hash."""
    d = where / "registry.terraform.io" / "tfgate" / "fake"
    d.mkdir(parents=True, exist_ok=True)
    data = _zip({"terraform-provider-fake_v1.0.0": package})
    (d / "terraform-provider-fake_1.0.0_linux_amd64.zip").write_bytes(data)
    return where, "zh:" + hashlib.sha256(data).hexdigest()


def _lock(*entries: tuple[str, str, str]) -> bytes:
    return "".join(
        f'provider "{src}" {{\n  version = "{ver}"\n  hashes = [\n    "{h}",\n  ]\n}}\n'
        for src, ver, h in entries
    ).encode()


def _plan(lock: bytes, child: str = CHILD_TF, root: str = ROOT_TF, state: bytes | None = None) -> bytes:
    """A saved plan's archive as Terraform 1.11 writes it (tfconfig/, modules.json, lock file, states)."""
    modules = [{"Key": "", "Dir": "."}, {"Key": "child", "Source": "./modules/child", "Dir": "modules/child"}]
    empty = json.dumps({"version": 4, "terraform_version": "1.11.4", "serial": 0, "lineage": "", "outputs": {},
                        "resources": []}).encode()  # fmt: skip
    return _zip({
        "tfplan": b"", "tfstate": state or empty, "tfstate-prev": state or empty,
        "tfconfig/m-/main.tf": root.encode(), "tfconfig/m-child/main.tf": child.encode(),
        "tfconfig/modules.json": json.dumps(modules).encode(), ".terraform.lock.hcl": lock,
    })  # fmt: skip


@pytest.fixture
def side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The privileged side's data dir (CLI configuration naming the mirror, plugin cache) and working dir."""
    if os.geteuid() != 0:
        pytest.skip("the mirror must be root's (CI runs as root)")
    tmp_path.chmod(0o755)
    (tmp_path / "data" / "plugins").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    (tmp_path / "data" / "terraformrc").write_bytes(providers.cli_config(str(tmp_path / "mirror")))
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(tmp_path / "data" / "terraformrc"))
    monkeypatch.setenv("TF_PLUGIN_CACHE_DIR", str(tmp_path / "data" / "plugins"))
    monkeypatch.setenv("CHECKPOINT_DISABLE", "1")
    return tmp_path


def _installed(work: Path) -> Path:
    return work / ".terraform/providers" / FAKE / "1.0.0/linux_amd64/terraform-provider-fake_v1.0.0"


@pytest.mark.parametrize("terraform", TERRAFORMS)
def test_a_provider_only_a_local_module_requires_installs_from_the_mirror(
    side: Path, terraform: list[str]
) -> None:
    _, digest = _mirror(side / "mirror")
    providers.check_cli_config(side / "data" / "terraformrc", str(side / "mirror"))
    providers.install(
        terraform,
        _plan(_lock((FAKE, "1.0.0", digest))),
        side / "work",
        ("registry.terraform.io/tfgate/*",),
        False,
    )
    assert _installed(side / "work").read_bytes() == PACKAGE
    written = (side / "work" / providers.LOCK).read_text()
    assert FAKE in written and digest in written
    assert (
        'source = "registry.terraform.io/tfgate/fake", version = "= 1.0.0"'
        in (side / "work" / providers.REQUIRED).read_text()
    )


@pytest.mark.parametrize("terraform", TERRAFORMS)
def test_a_tampered_package_is_refused(side: Path, terraform: list[str]) -> None:
    _, digest = _mirror(side / "other")  # the hash of the genuine package, as the agent's lock records it
    _mirror(side / "mirror", b"#!/bin/sh\necho substituted\n")
    with pytest.raises(TfgateError, match="checksums"):
        providers.install(terraform, _plan(_lock((FAKE, "1.0.0", digest))), side / "work", ANY, False)
    assert not _installed(side / "work").exists()


@pytest.mark.parametrize("terraform", TERRAFORMS)
def test_the_callers_dot_terraform_is_never_read(
    side: Path, terraform: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller's root holds the package in its `.terraform/` (and runs us from there); the mirror does not:
    the installation fails instead of taking it."""
    _, digest = _mirror(side / "elsewhere")
    caller = side / "caller"
    planted = caller / ".terraform/providers" / FAKE / "1.0.0/linux_amd64"
    planted.mkdir(parents=True)
    (planted / "terraform-provider-fake_v1.0.0").write_bytes(PACKAGE)
    (side / "mirror").mkdir()
    monkeypatch.chdir(caller)
    with pytest.raises(TfgateError, match="cannot install"):
        providers.install(terraform, _plan(_lock((FAKE, "1.0.0", digest))), side / "work", ANY, False)
    assert not _installed(side / "work").exists()


ANY = ("registry.terraform.io/tfgate/*",)


def test_without_an_allow_list_only_built_in_providers_are_installed(side: Path) -> None:
    """A provider runs as the privileged user (a `local_file` data source whose path is known only at apply
    reads its files into the agent-readable state): a protected root installs only providers root listed."""
    _, digest = _mirror(side / "mirror")
    with pytest.raises(TfgateError, match=r"lists none") as refused:
        providers.install(["/nonexistent/terraform"], _plan(_lock((FAKE, "1.0.0", digest))), side / "work", None,
                          False, root="/srv/infra/prod")  # fmt: skip
    # The way on: the exact list to add, where, and root's command that pins it.
    assert f'`plan: {{providers: ["{FAKE}"]}}` to /srv/infra/prod/tfgate.yaml' in str(refused.value)
    assert '"terraform.io/builtin/terraform" too' in str(refused.value)  # a list admits only what it names
    assert "`sudo tfgate protect policy /srv/infra/prod`" in str(refused.value)
    with pytest.raises(TfgateError, match=r"outside the manifest's"):  # `providers: []`: none
        providers.install(["/nonexistent/terraform"], _plan(_lock((FAKE, "1.0.0", digest))), side / "work", (),
                          False)  # fmt: skip
    assert not (side / "work" / ".terraform").exists()


def test_lock_entries_outside_the_allow_list_or_unused_are_refused_before_any_download(side: Path) -> None:
    _, digest = _mirror(side / "mirror")
    plan = _plan(_lock((FAKE, "1.0.0", digest)))
    with pytest.raises(
        TfgateError,
        match=r"outside the manifest's `plan: {providers}` allow-list: registry.terraform.io/tfgate/fake",
    ):
        providers.install(
            ["/nonexistent/terraform"], plan, side / "work", ("registry.terraform.io/hashicorp/*",), False
        )
    unused = _plan(_lock((FAKE, "1.0.0", digest), ("registry.terraform.io/hashicorp/aws", "5.0.0", digest)))
    with pytest.raises(TfgateError, match=r"does not use: registry.terraform.io/hashicorp/aws"):
        providers.install(["/nonexistent/terraform"], unused, side / "work", ANY, False)
    assert not (side / "work" / ".terraform").exists() and not any((side / "data" / "plugins").iterdir())


def test_the_providers_a_configuration_and_its_state_use() -> None:
    child = (
        CHILD_TF
        + """
provider "aws" { alias = "west" }
data "google_thing" "g" { provider = google.eu }
resource "null_resource" "n" { provider = other.x }
ephemeral "random_password" "p" {}
check "c" {
  data "http" "h" {}
}
resource "terraform_data" "builtin" {}
"""
    )
    state = json.dumps({"version": 4, "resources": [{"mode": "managed", "type": "old_thing", "name": "o",
                        "provider": 'provider["example.com/acme/old"]', "instances": []}]}).encode()  # fmt: skip
    archive = zipfile.ZipFile(io.BytesIO(_plan(b"", child=child, state=state)))
    assert providers.used_providers(archive) == {
        FAKE, "example.com/acme/old",
        *(f"registry.terraform.io/hashicorp/{n}" for n in ("aws", "google", "other", "random", "http", "null")),
    }  # fmt: skip
    json_child = json.dumps({"terraform": {"required_providers": {"f": {"source": "tfgate/fake"}}},
                             "resource": {"f_thing": {"t": {}}}})  # fmt: skip
    archive = zipfile.ZipFile(
        io.BytesIO(
            _zip({"tfconfig/modules.json": b'[{"Key": ""}]', "tfconfig/m-/main.tf.json": json_child.encode()})
        )
    )
    assert providers.used_providers(archive) == {FAKE}


@pytest.mark.parametrize(
    ("lock", "why"),
    [
        (_lock((FAKE, "~> 1.0", "zh:" + "0" * 64)), "not exact"),
        (_lock(("tfgate/fake", "1.0.0", "zh:" + "0" * 64)), "not a full source address"),
        (_lock((FAKE, "1.0.0", "zh:" + "0" * 64), (FAKE, "1.0.0", "zh:" + "1" * 64)), "twice"),
        (b'provider "registry.terraform.io/tfgate/fake" {\n  version = "1.0.0"\n}\n', "needs hashes"),
        (_lock((FAKE, '1.0.0\\"\n}\nprovider \\"x', "zh:" + "0" * 64)), "not exact"),
        (_lock((FAKE, "1.0.0", "md5:abc")), "needs hashes"),
        (b'module "x" {}\n', "other than `provider`"),
        (b'provider "registry.terraform.io/tfgate/fake" {\n  version = "1.0.0"\n  hashes = ["zh:' + b"0" * 64
         + b'"]\n  source = "evil"\n}\n', "unexpected settings"),
        (b"provider {", "does not parse"),
    ],
)  # fmt: skip
def test_a_malformed_lock_file_is_refused(lock: bytes, why: str) -> None:
    with pytest.raises(TfgateError, match=why):
        providers.checked_locks(_plan(lock), None)


def test_the_cli_configuration_and_the_mirror_must_be_roots(side: Path) -> None:
    _mirror(side / "mirror")
    rc = side / "data" / "terraformrc"
    providers.check_cli_config(rc, str(side / "mirror"))
    with pytest.raises(TfgateError, match="not the CLI configuration root pinned"):
        providers.check_cli_config(rc, None)  # the pin says the registry, the file a mirror
    from tests.unix_users import AGENT, ensure_user

    agent = ensure_user(AGENT)
    sub = side / "mirror" / "registry.terraform.io" / "tfgate"
    os.chown(sub, agent.pw_uid, agent.pw_gid)
    with pytest.raises(TfgateError, match="not root-controlled"):
        providers.check_cli_config(rc, str(side / "mirror"))
    os.chown(sub, 0, 0)
    sub.chmod(0o777)
    assert providers.mirror_problems(side / "mirror")
