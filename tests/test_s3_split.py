"""Real credentials, not only files (issue 13 item 6): an S3 backend on moto_server with IAM authentication
on. The agent's credentials may read the state object (so it can plan, and tfgate can check), only the
privileged credentials may write it: a direct `terraform destroy` with the agent's keys leaves it
byte-identical. Real Terraform, real boto3 against moto_server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TF

pytestmark = pytest.mark.slow

KEY = "prod/terraform.tfstate"
CONFIG = 'resource "terraform_data" "db" {\n  input = "orders"\n}\n'
PROTECT = "version: 1\nprotect:\n  - name: db\n    match: {address: terraform_data.db}\n"
#: The setup moto runs without authentication (INITIAL_NO_AUTH_ACTION_COUNT): exactly these calls.
SETUP_CALLS = 9


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def iam_s3():
    """moto_server enforcing IAM after SETUP_CALLS calls: a versioned bucket, a read-only agent and a
    privileged writer, each with an access key."""
    import boto3

    port = _free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_CALLS)}
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("moto_server did not start")
    setup = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "setup",
             "aws_secret_access_key": "setup"}  # fmt: skip
    s3, iam = boto3.client("s3", **setup), boto3.client("iam", **setup)
    bucket = "tfgate-split-state"
    s3.create_bucket(Bucket=bucket)  # 1
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})  # 2
    arn = f"arn:aws:s3:::{bucket}"
    read = ["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:ListBucketVersions",
            "s3:GetBucketVersioning", "s3:HeadObject"]  # fmt: skip
    policies = {
        "agent": {"Effect": "Allow", "Action": read, "Resource": [arn, f"{arn}/*"]},
        "tfgate": {"Effect": "Allow", "Action": "s3:*", "Resource": [arn, f"{arn}/*"]},
    }
    keys = {}
    for user, statement in policies.items():  # 3 calls each: 3-8
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="state",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))  # fmt: skip
        key = iam.create_access_key(UserName=user)["AccessKey"]
        keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
    s3.list_buckets()  # 9: the last call without authentication
    yield url, bucket, keys
    proc.terminate()
    proc.wait(10)


def _env(keys: tuple[str, str]) -> dict[str, str]:
    return {**os.environ, "AWS_ACCESS_KEY_ID": keys[0], "AWS_SECRET_ACCESS_KEY": keys[1],
            "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip


def _run(tf: TF, keys, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tf.exe), *args], cwd=tf.dir, capture_output=True, text=True, env=_env(keys),
                          stdin=subprocess.DEVNULL)  # fmt: skip


def _state(url: str, bucket: str, keys) -> bytes:
    import boto3

    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=keys[0],
                      aws_secret_access_key=keys[1])  # fmt: skip
    return s3.get_object(Bucket=bucket, Key=KEY)["Body"].read()


def test_agent_credentials_read_the_state_and_cannot_write_it(iam_s3, tf: TF) -> None:
    url, bucket, keys = iam_s3
    tf.write(
        f'terraform {{\n  backend "s3" {{\n    bucket = "{bucket}"\n    key = "{KEY}"\n    region = "us-east-1"\n'
        f'    endpoints = {{ s3 = "{url}" }}\n    use_path_style = true\n    skip_credentials_validation = true\n'
        "    skip_requesting_account_id = true\n    skip_metadata_api_check = true\n"
        "    skip_region_validation = true\n  }\n}\n",
        "backend.tf",
    )
    tf.write(CONFIG)
    (tf.dir / "tfgate.yaml").write_text(PROTECT)
    for args in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        proc = _run(tf, keys["tfgate"], *args)  # the privileged credentials write the state
        assert proc.returncode == 0, proc.stderr
    before = _state(url, bucket, keys["tfgate"])
    assert json.loads(before)["resources"]

    # The agent can read it: plan, and tfgate checks the plan against the state in S3.
    proc = _run(tf, keys["agent"], "plan", "-destroy", "-out=destroy.bin", "-input=false")
    assert proc.returncode == 0, proc.stderr
    check = subprocess.run([sys.executable, "-m", "tfgate", "check", "destroy.bin", "--format", "json"],
                           cwd=tf.dir, capture_output=True, text=True, env=_env(keys["agent"]))  # fmt: skip
    assert check.returncode == 1, check.stderr
    assert [v["address"] for v in json.loads(check.stdout)["violations"]] == ["terraform_data.db"]

    # It cannot write it: a direct destroy (and the saved destroy plan) are denied by IAM.
    for args in (["destroy", "-auto-approve", "-input=false"], ["apply", "-input=false", "destroy.bin"]):
        proc = _run(tf, keys["agent"], *args)
        assert proc.returncode != 0, proc.stdout
        assert "AccessDenied" in proc.stderr or "403" in proc.stderr, proc.stderr
        assert _state(url, bucket, keys["tfgate"]) == before
    assert Path(tf.dir / "destroy.bin").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="real users and sudo need root")
def test_protected_root_on_s3_applies_only_with_the_privileged_credentials(iam_s3, tmp_path: Path) -> None:
    """Protected mode with the state in S3: the agent holds read-only keys, the privileged user's keys (in its
    own data directory) are the only ones that can write; an allowed change applies through `tfgate apply`."""
    import shutil
    import tempfile

    from tests.test_protect import PRIV, Protected, _terraform
    from tests.unix_users import AGENT, ensure_user, runtime
    from tfgate import sysconfig

    url, bucket, keys = iam_s3
    agent, rt = ensure_user(AGENT), runtime()
    base = Path(tempfile.mkdtemp(prefix="tfgate-s3prot-", dir="/tmp"))
    base.chmod(0o755)
    for d in ("etc", "libexec", "bin", "root"):
        (base / d).mkdir(mode=0o755)
    root, config = base / "root", base / "etc" / "config.yaml"
    key = f"protected-{time.time_ns()}/terraform.tfstate"
    (root / "backend.tf").write_text(
        f'terraform {{\n  backend "s3" {{\n    bucket = "{bucket}"\n    key = "{key}"\n    region = "us-east-1"\n'
        f'    endpoints = {{ s3 = "{url}" }}\n    use_path_style = true\n    skip_credentials_validation = true\n'
        "    skip_requesting_account_id = true\n    skip_metadata_api_check = true\n"
        "    skip_region_validation = true\n  }\n}\n"
    )
    (root / "main.tf").write_text(CONFIG)
    (root / "tfgate.yaml").write_text(PROTECT)
    tf = TF(root, Path(_terraform(rt, base / "bin")))
    for args in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):  # before protection
        proc = _run(tf, keys["tfgate"], *args)
        assert proc.returncode == 0, proc.stderr
    (root / "main.tf").write_text(CONFIG + 'resource "terraform_data" "added" {}\n')
    subprocess.run(["chown", "-R", f"{agent.pw_uid}:{agent.pw_gid}", str(root)], check=True)
    p = Protected(rt, base, root, config, _terraform(rt, base / "bin"))
    agent_keys = {"AWS_ACCESS_KEY_ID": keys["agent"][0], "AWS_SECRET_ACCESS_KEY": keys["agent"][1]}
    env = {**os.environ, sysconfig.ENV_CONFIG: str(config)}
    creds = base / "apply.env"  # the apply role's keys: `protect init` places them where only PRIV reads them
    creds.write_text(f"AWS_ACCESS_KEY_ID={keys['tfgate'][0]}\nAWS_SECRET_ACCESS_KEY={keys['tfgate'][1]}\n")
    init = [sys.executable, "-m", "tfgate", "protect", "init", str(root), "--agent-user", AGENT, "--user", PRIV,
            "--terraform", p.terraform, "--libexec", str(base / "libexec"), "--env-file", str(creds)]  # fmt: skip
    privileged = None
    try:
        proc = subprocess.run(init, capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        privileged = Path(p.pin.manifest).parent.parent
        assert not (privileged / "data" / ".aws").exists()  # the keys come from the env file alone
        assert p.agent(p.terraform, "init", "-input=false", **agent_keys).returncode == 0
        proc = p.tfgate("apply", "--auto-approve", "--new-workspace", **agent_keys)
        assert proc.returncode == 2 and "only root gives it" in proc.stderr, proc.stderr
        # An allowed change: the agent plans with read-only keys; the privileged side writes the state.
        proc = p.tfgate("apply", "--auto-approve", **agent_keys)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        import boto3

        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=keys["tfgate"][0],
                          aws_secret_access_key=keys["tfgate"][1])  # fmt: skip
        state = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert sorted(r["name"] for r in json.loads(state)["resources"]) == ["added", "db"]
        # Ways around with the agent's keys: all leave the state object byte-identical.
        for args in ([p.terraform, "destroy", "-auto-approve", "-input=false", "-lock=false"],
                     [rt.python, "-m", "tfgate", "destroy", "--auto-approve"]):  # fmt: skip
            proc = p.agent(*args, **agent_keys)
            assert proc.returncode != 0, proc.stdout + proc.stderr
            assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == state
    finally:
        subprocess.run(
            [sys.executable, "-m", "tfgate", "protect", "remove", str(root)], env=env, capture_output=True
        )
        if privileged is not None:
            shutil.rmtree(privileged, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)
