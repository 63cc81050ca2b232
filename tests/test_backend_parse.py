"""The quick backend reader agrees with python-hcl2 wherever it answers, and defers to it otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfgate.state import backend as b

from .conftest import REPO

CASES = [
    'terraform {\n  backend "s3" {\n    bucket = "b"\n    key    = "prod/terraform.tfstate"\n'
    '    region = "eu-west-1"\n    encrypt = true\n    use_lockfile = false\n  }\n}\n',
    '# comment with { braces }\nterraform {\n  required_version = ">= 1.5"\n  backend "local" {\n'
    '    path = "x.tfstate" # trailing\n  }\n}\n',
    'terraform {\n  cloud {\n    organization = "acme"\n  }\n}\n',
    'resource "x" "y" {\n  policy = <<EOT\n{ "terraform": { "backend": 1 } }\nEOT\n}\n'
    'terraform {\n  backend "gcs" {\n    bucket = "b"\n    prefix = "p"\n  }\n}\n',
    '/* block\n comment */\nterraform {\n  backend "azurerm" {\n    key = "a"\n    use_oidc = true\n'
    "    timeout_seconds = 30\n  }\n}\n",
    'terraform {\n  required_providers {\n    aws = { source = "hashicorp/aws" }\n  }\n}\n'
    'resource "terraform_data" "backend" {}\n',
    # braces and quotes inside template sequences do not throw the block depth off
    'locals {\n  a = "${"{"}"\n  b = "${replace(x, "{", "")}"\n}\n'
    'terraform {\n  backend "s3" {\n    bucket = "b"\n  }\n}\n',
    # shapes the quick reader leaves to python-hcl2
    'terraform {\n  backend "s3" {\n    bucket = "b"\n    assume_role {\n      role_arn = "r"\n    }\n  }\n}\n',
    'terraform {\n  backend "s3" {\n    key = "${var.env}/state"\n  }\n}\n',
    'terraform {\n  backend "s3" {\n    endpoints = { s3 = "http://127.0.0.1:5000" }\n  }\n}\n',
]


def _files() -> list[tuple[str, str]]:
    found = [(str(p.relative_to(REPO)), p.read_text()) for p in sorted(REPO.glob("fixtures/**/*.tf"))]
    return found + [(f"case{i}", text) for i, text in enumerate(CASES)]


@pytest.mark.parametrize(("name", "text"), _files(), ids=[n for n, _ in _files()])
def test_quick_reader_agrees_with_hcl2(tmp_path: Path, name: str, text: str) -> None:
    import hcl2

    try:
        quick = b._quick_backend(text, name)
    except b._Unsure:
        return  # configured_backend then uses python-hcl2 itself
    doc = hcl2.loads(text)
    expected = None
    for block in doc.get("terraform", []):
        for backend in block.get("backend", []):
            for kind, config in backend.items():
                expected = (b._unquote(kind), b._unquote(config))
        if block.get("cloud") and expected is None:
            expected = ("cloud", b._unquote(block["cloud"][0]))
    assert (None if quick is None else (quick.type, quick.config)) == expected


def test_templates_with_braces_do_not_hide_the_backend(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(CASES[6])
    found = b.configured_backend(tmp_path)
    assert found is not None and (found.type, found.config) == ("s3", {"bucket": "b"})


def test_configured_backend_falls_back_to_hcl2(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(CASES[-3])  # a nested assume_role block
    found = b.configured_backend(tmp_path)
    assert found is not None and found.type == "s3" and found.config["bucket"] == "b"
    (tmp_path / "main.tf").write_text(CASES[0])
    assert b.configured_backend(tmp_path).config == {
        "bucket": "b", "key": "prod/terraform.tfstate", "region": "eu-west-1", "encrypt": True,
        "use_lockfile": False,
    }  # fmt: skip
