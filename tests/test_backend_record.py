"""A saved plan's backend record, read without Terraform (tfgate.plan.backend_record): real plans from the
embedded Terraform, and every malformed shape refused (exit 2) rather than guessed."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

from tfgate.errors import TfgateError
from tfgate.plan.backend_record import LOCAL_DEFAULT, plan_backend, unpack, without_nulls


def test_real_plans_name_their_backend_and_workspace(tf) -> None:
    tf.write('resource "terraform_data" "a" {}\n')
    tf.run("init", "-input=false")
    plan = tf.plan()
    assert plan_backend(plan.read_bytes()) == plan_backend(plan) == ("local", LOCAL_DEFAULT, "default")
    tf.run("workspace", "new", "blue.green-1")
    kind, config, workspace = plan_backend(tf.plan().read_bytes())
    assert (kind, workspace) == ("local", "blue.green-1")
    assert unpack(config) == {"path": None, "workspace_dir": None}
    tf.write('terraform {\n  backend "local" {\n    path = "elsewhere.tfstate"\n  }\n}\n', name="backend.tf")
    tf.run("init", "-input=false", "-reconfigure", "-force-copy")
    kind, config, _ = plan_backend(tf.plan().read_bytes())
    assert without_nulls(unpack(config)) == {"path": "elsewhere.tfstate"}


def _zip(tfplan: bytes | None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        if tfplan is not None:
            z.writestr("tfplan", tfplan)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"not a zip", "not a saved plan"),
        (_zip(None), "not a saved plan"),
        (_zip(b""), "no single backend"),
        (_zip(b"\x6a\x00\x6a\x00"), "no single backend"),  # field 13 twice
        (_zip(b"\x6a\x05ab"), "malformed"),  # a length past the end
        (_zip(b"\x6b"), "malformed"),  # wire type 3 (groups)
        (_zip(b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"), "malformed"),  # a varint over 64 bits
    ],
)
def test_malformed_plans_are_refused(data: bytes, why: str) -> None:
    with pytest.raises(TfgateError, match=why):
        plan_backend(data)


def test_the_msgpack_subset() -> None:
    double = b"\xcb" + struct.pack(">d", 1.5)
    assert unpack(b"\x83\xa1a\xc3\xa1b\x92\x01\xd0\xff\xa1c" + double) == {"a": True, "b": [1, -1], "c": 1.5}
    for bad, why in [(b"\xc1", "does not read"), (b"\xd4\x01\x00", "does not read"), (b"\xc0\xc0", "trailing"),
                     (b"", "truncated"), (b"\x81\xa1a", "truncated"), (b"\xa5ab", "truncated"),
                     (b"\xd9", "truncated"), (b"\xcb\x00", "truncated"), (b"\xa1\xff", "not UTF-8")]:  # fmt: skip
        with pytest.raises(TfgateError, match=why):
            unpack(bad)
