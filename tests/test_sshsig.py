"""SSHSIG parsing/verification and allowed-signers files, against real OpenSSH `ssh-keygen`."""

from __future__ import annotations

import base64
import hashlib
import shutil
import struct
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tfgate.approvals import allowed_signers, sshsig
from tfgate.errors import TfgateError

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH ssh-keygen")

KEY_TYPES = {
    "ed25519": ["-t", "ed25519"],
    "ecdsa256": ["-t", "ecdsa", "-b", "256"],
    "ecdsa384": ["-t", "ecdsa", "-b", "384"],
    "ecdsa521": ["-t", "ecdsa", "-b", "521"],
    "rsa": ["-t", "rsa", "-b", "2048"],
}


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Fresh OpenSSH key pairs (no passphrase) for this test session."""
    d = tmp_path_factory.mktemp("sshkeys")
    out = {}
    for name, args in KEY_TYPES.items():
        path = d / f"id_{name}"
        subprocess.run(
            ["ssh-keygen", "-q", *args, "-N", "", "-C", f"{name}@test", "-f", str(path)],
            check=True,
            capture_output=True,
        )
        out[name] = path
    return out


def pub(key: Path) -> str:
    return " ".join(Path(f"{key}.pub").read_text().split()[:2])


def keygen_sign(key: Path, file: Path, namespace: str = "tfgate", *extra: str) -> bytes:
    file.with_name(file.name + ".sig").unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-n", namespace, "-f", str(key), *extra, str(file)],
        check=True,
        capture_output=True,
    )
    return file.with_name(file.name + ".sig").read_bytes()


def keygen_verify(signers: Path, principal: str, file: Path, namespace: str = "tfgate") -> bool:
    with open(file, "rb") as fh:
        proc = subprocess.run(
            ["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", principal, "-n", namespace, "-s",
             f"{file}.sig"],
            stdin=fh, capture_output=True,
        )  # fmt: skip
    return proc.returncode == 0


# --- a minimal SSHSIG signer for what ssh-keygen cannot make: rsa-sha2-256 and security keys -----------


def _s(data: bytes) -> bytes:
    return sshsig.ssh_string(data)


def _mpint(n: int) -> bytes:
    raw = n.to_bytes((n.bit_length() + 8) // 8, "big") if n else b""
    return _s(raw)


def sshsig_blob(pub_blob: bytes, namespace: str, hashalg: str, sig: bytes) -> bytes:
    return (
        b"SSHSIG"
        + struct.pack(">I", 1)
        + _s(pub_blob)
        + _s(namespace.encode())
        + _s(b"")
        + _s(hashalg.encode())
        + _s(sig)
    )


def rsa_sha256_sign(key: Path, message: bytes, namespace: str = "tfgate") -> str:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    priv = serialization.load_ssh_private_key(key.read_bytes(), None)
    nums = priv.public_key().public_numbers()
    pub_blob = _s(b"ssh-rsa") + _mpint(nums.e) + _mpint(nums.n)
    data = sshsig.signed_data(namespace, "sha512", message)
    raw = priv.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return sshsig.armor(sshsig_blob(pub_blob, namespace, "sha512", _s(b"rsa-sha2-256") + _s(raw)))


def sk_sign(kind: str, message: bytes, *, flags: int = 1, namespace: str = "tfgate") -> tuple[str, str]:
    """(armored signature, allowed-signers key text) for a simulated FIDO authenticator."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    app = b"ssh:"
    data = sshsig.signed_data(namespace, "sha512", message)
    counter = 7
    to_sign = hashlib.sha256(app).digest() + bytes([flags]) + struct.pack(">I", counter)
    to_sign += hashlib.sha256(data).digest()
    if kind == "ed25519":
        name = b"sk-ssh-ed25519@openssh.com"
        priv = ed25519.Ed25519PrivateKey.generate()
        pk = priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        pub_blob = _s(name) + _s(pk) + _s(app)
        inner = _s(priv.sign(to_sign))
    else:
        name = b"sk-ecdsa-sha2-nistp256@openssh.com"
        priv = ec.generate_private_key(ec.SECP256R1())
        q = priv.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        pub_blob = _s(name) + _s(b"nistp256") + _s(q) + _s(app)
        r, s = decode_dss_signature(priv.sign(to_sign, ec.ECDSA(hashes.SHA256())))
        inner = _s(_mpint(r) + _mpint(s))
    sig = _s(name) + inner + bytes([flags]) + struct.pack(">I", counter)
    armored = sshsig.armor(sshsig_blob(pub_blob, namespace, "sha512", sig))
    return armored, f"{name.decode()} {base64.b64encode(pub_blob).decode()}"


# --- ssh-keygen -> tfgate ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KEY_TYPES))
@pytest.mark.parametrize("hashalg", ["sha512", "sha256"])
def test_keygen_signatures_verify_in_process(keys, tmp_path: Path, kind: str, hashalg: str) -> None:
    msg = tmp_path / "statement.json"
    msg.write_bytes(b'{"hello": "world"}\n')
    armored = keygen_sign(keys[kind], msg, "tfgate", "-O", f"hashalg={hashalg}")
    sig = sshsig.parse(armored)
    assert sig.namespace == "tfgate" and sig.hash_algorithm == hashalg
    if kind == "rsa":
        assert sig.signature_algorithm == "rsa-sha2-512"  # what ssh-keygen always uses for RSA
    key = sshsig.verify(sig, msg.read_bytes(), "tfgate")
    assert key == sshsig.PublicKey.from_openssh(pub(keys[kind]))
    fp = subprocess.run(["ssh-keygen", "-lf", f"{keys[kind]}.pub"], capture_output=True, text=True).stdout
    assert key.fingerprint == fp.split()[1]
    # One changed byte anywhere in the message: refused as a bad signature.
    with pytest.raises(sshsig.SignatureError) as exc:
        sshsig.verify(sig, msg.read_bytes().replace(b"world", b"World"), "tfgate")
    assert exc.value.kind == "bad"


def test_in_process_ed25519_signatures_are_what_ssh_keygen_verifies(tmp_path: Path) -> None:
    """The demo's OpenSSH-less signer writes what `ssh-keygen -Y verify` accepts, and nothing else passes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"demo@example.com {public.decode()}\n")
    file = tmp_path / "statement.json"
    file.write_bytes(b'{"x": 1}')
    armored = sshsig.sign_ed25519(private, file.read_bytes(), "tfgate")
    (tmp_path / "statement.json.sig").write_text(armored)
    assert keygen_verify(signers, "demo@example.com", file)
    assert sshsig.verify(sshsig.parse(armored), file.read_bytes(), "tfgate").type == "ssh-ed25519"
    assert not keygen_verify(signers, "demo@example.com", file, namespace="tfgate-shim")
    file.write_bytes(b'{"x": 2}')
    assert not keygen_verify(signers, "demo@example.com", file)


def test_wrong_namespace_is_refused(keys, tmp_path: Path) -> None:
    msg = tmp_path / "m"
    msg.write_bytes(b"data")
    sig = sshsig.parse(keygen_sign(keys["ed25519"], msg, "git"))
    with pytest.raises(sshsig.SignatureError) as exc:
        sshsig.verify(sig, b"data", "tfgate")
    assert exc.value.kind == "namespace" and "'git'" in str(exc.value)
    assert sshsig.verify(sig, b"data", "git") == sig.public_key


def test_tampered_signature_fields(keys, tmp_path: Path) -> None:
    msg = tmp_path / "m"
    msg.write_bytes(b"data")
    armored = keygen_sign(keys["ecdsa256"], msg)
    blob = bytearray(sshsig.dearmor(armored))
    blob[-5] ^= 0x01  # inside the ECDSA s value
    with pytest.raises(sshsig.SignatureError) as exc:
        sshsig.verify(sshsig.parse(sshsig.armor(bytes(blob))), b"data", "tfgate")
    assert exc.value.kind == "bad"
    # Another key's public half swapped in: the signature no longer matches it.
    other = sshsig.PublicKey.from_openssh(pub(keys["ed25519"]))
    sig = sshsig.parse(armored)
    forged = sshsig.SshSignature(
        other, sig.namespace, sig.hash_algorithm, sig.signature_algorithm, sig.signature
    )
    with pytest.raises(sshsig.SignatureError):
        sshsig.verify(forged, b"data", "tfgate")


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"-----BEGIN SSH SIGNATURE-----\nAAAA\n",
        b"-----BEGIN SSH SIGNATURE-----\n!!!!\n-----END SSH SIGNATURE-----\n",
        sshsig.armor(b"NOTSIG" + b"\0" * 20).encode(),
        sshsig.armor(b"SSHSIG\0\0\0\x02").encode(),
    ],
)
def test_malformed_signatures(text: bytes) -> None:
    with pytest.raises(sshsig.SignatureError) as exc:
        sshsig.parse(text)
    assert exc.value.kind in ("malformed", "unsupported")


def test_trailing_data_and_bad_hash_refused(keys, tmp_path: Path) -> None:
    msg = tmp_path / "m"
    msg.write_bytes(b"data")
    blob = sshsig.dearmor(keygen_sign(keys["ed25519"], msg))
    with pytest.raises(sshsig.SignatureError, match="trailing"):
        sshsig.parse(sshsig.armor(blob + b"x"))
    with pytest.raises(sshsig.SignatureError, match="hash algorithm"):
        sshsig.parse(sshsig.armor(blob.replace(b"\0\0\0\x06sha512", b"\0\0\0\x06sha384")))


# --- tfgate-made signatures -> ssh-keygen ---------------------------------------------------------------


def test_rsa_sha2_256_both_ways(keys, tmp_path: Path) -> None:
    msg = tmp_path / "m"
    msg.write_bytes(b"approve me\n")
    armored = rsa_sha256_sign(keys["rsa"], msg.read_bytes())
    (tmp_path / "m.sig").write_text(armored)
    sig = sshsig.parse(armored)
    assert sig.signature_algorithm == "rsa-sha2-256"
    assert sshsig.verify(sig, msg.read_bytes(), "tfgate").type == "ssh-rsa"
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"alice@example.com {pub(keys['rsa'])}\n")
    assert keygen_verify(signers, "alice@example.com", msg)  # OpenSSH agrees it is a good signature


def test_rsa_sha1_refused(keys) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    priv = serialization.load_ssh_private_key(keys["rsa"].read_bytes(), None)
    nums = priv.public_key().public_numbers()
    pub_blob = _s(b"ssh-rsa") + _mpint(nums.e) + _mpint(nums.n)
    raw = priv.sign(sshsig.signed_data("tfgate", "sha512", b"m"), padding.PKCS1v15(), hashes.SHA1())
    sig = sshsig.parse(sshsig.armor(sshsig_blob(pub_blob, "tfgate", "sha512", _s(b"ssh-rsa") + _s(raw))))
    with pytest.raises(sshsig.SignatureError) as exc:
        sshsig.verify(sig, b"m", "tfgate")
    assert exc.value.kind == "unsupported"


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa"])
def test_security_key_signatures(tmp_path: Path, kind: str) -> None:
    msg = tmp_path / "m"
    msg.write_bytes(b"approve me\n")
    armored, key_text = sk_sign(kind, msg.read_bytes())
    (tmp_path / "m.sig").write_text(armored)
    sig = sshsig.parse(armored)
    assert sig.public_key.type.startswith("sk-")
    assert sshsig.verify(sig, msg.read_bytes(), "tfgate") == sshsig.PublicKey.from_openssh(key_text)
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"alice@example.com {key_text}\n")
    assert keygen_verify(signers, "alice@example.com", msg)  # same bytes OpenSSH accepts
    with pytest.raises(sshsig.SignatureError):
        sshsig.verify(sig, b"approve me!\n", "tfgate")
    # Without the user-presence flag (no touch) tfgate refuses.
    armored, _ = sk_sign(kind, msg.read_bytes(), flags=0)
    with pytest.raises(sshsig.SignatureError, match="user presence"):
        sshsig.verify(sshsig.parse(armored), msg.read_bytes(), "tfgate")


def test_certificates_and_dsa_refused() -> None:
    blob = _s(b"ssh-ed25519-cert-v01@openssh.com") + _s(b"x" * 32)
    with pytest.raises(sshsig.SignatureError, match="certificate"):
        sshsig.PublicKey.from_blob(blob)
    with pytest.raises(sshsig.SignatureError, match="unsupported key type"):
        sshsig.PublicKey.from_blob(_s(b"ssh-dss") + _mpint(5))


# --- allowed signers ------------------------------------------------------------------------------------


NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


def test_allowed_signers_principals_wildcards_negation(keys) -> None:
    ed, ec = pub(keys["ed25519"]), pub(keys["ecdsa256"])
    text = (
        "# team keys\n\n"
        f"alice@example.com,*@platform.example.com,!mallory@platform.example.com {ed} alice laptop\n"
        f'"bob smith@example.com" {ec}\n'
    )
    s = allowed_signers.parse(text)
    key_ed, key_ec = (sshsig.PublicKey.from_openssh(k) for k in (ed, ec))
    assert s.authorize(key_ed, "alice@example.com", "tfgate", NOW).ok
    assert s.authorize(key_ed, "carol@platform.example.com", "tfgate", NOW).ok
    refused = s.authorize(key_ed, "mallory@platform.example.com", "tfgate", NOW)
    assert not refused.ok and refused.kind == "unknown signer"
    assert not s.authorize(key_ed, "Alice@example.com", "tfgate", NOW).ok  # case-sensitive like OpenSSH
    assert s.authorize(key_ec, "bob smith@example.com", "tfgate", NOW).ok
    assert not s.authorize(key_ec, "alice@example.com", "tfgate", NOW).ok
    assert s.entries[0].line == 3


def test_allowed_signers_namespaces_and_validity(keys) -> None:
    ed = pub(keys["ed25519"])
    key = sshsig.PublicKey.from_openssh(ed)
    s = allowed_signers.parse(f'alice@example.com NameSpaces="git,file" {ed}\n')
    a = s.authorize(key, "alice@example.com", "tfgate", NOW)
    assert not a.ok and a.kind == "wrong namespace"
    assert s.authorize(key, "alice@example.com", "git", NOW).ok
    s = allowed_signers.parse(
        f'alice@example.com namespaces="tf*",valid-after="20250101",valid-before="20250601Z" {ed}\n'
    )
    assert s.authorize(key, "alice@example.com", "tfgate", datetime(2025, 3, 1, tzinfo=timezone.utc)).ok
    late = s.authorize(key, "alice@example.com", "tfgate", NOW)
    assert not late.ok and late.kind == "outside the signer's validity" and "valid-before" in late.reason
    early = s.authorize(key, "alice@example.com", "tfgate", datetime(2024, 12, 30, tzinfo=timezone.utc))
    assert not early.ok and "valid-after" in early.reason
    # A later line can still authorize the same key (OpenSSH takes the first line that accepts).
    s = allowed_signers.parse(f'alice@example.com valid-before="20240101Z" {ed}\nalice@example.com {ed}\n')
    assert s.authorize(key, "alice@example.com", "tfgate", NOW).ok


def test_allowed_signers_time_formats() -> None:
    assert allowed_signers.parse_time("20250102Z") == datetime(2025, 1, 2, tzinfo=timezone.utc)
    assert allowed_signers.parse_time("202501021304Z") == datetime(2025, 1, 2, 13, 4, tzinfo=timezone.utc)
    assert allowed_signers.parse_time("20250102130405Z") == datetime(
        2025, 1, 2, 13, 4, 5, tzinfo=timezone.utc
    )
    local = allowed_signers.parse_time("20250102")
    assert local.tzinfo is not None and local.replace(tzinfo=None) == datetime(2025, 1, 2)
    with pytest.raises(ValueError):
        allowed_signers.parse_time("2025-01-02")


def test_cert_authority_never_matches_a_plain_key(keys) -> None:
    ed = pub(keys["ed25519"])
    s = allowed_signers.parse(f"*@example.com cert-authority {ed}\n")
    a = s.authorize(sshsig.PublicKey.from_openssh(ed), "alice@example.com", "tfgate", NOW)
    assert not a.ok and a.kind == "unknown signer"


@pytest.mark.parametrize(
    "line",
    [
        "alice@example.com",
        "alice@example.com bogus-option {key}",
        "alice@example.com namespaces=tfgate {key}",  # OpenSSH requires the quotes
        'alice@example.com namespaces="a",namespaces="b" {key}',
        'alice@example.com valid-after="2025" {key}',
        'alice@example.com valid-after="20250102Z",valid-before="20250101Z" {key}',
        "alice@example.com ssh-ed25519 AAAA!!!",
        "alice@example.com ecdsa-sha2-nistp256 {b64}",  # declared type differs from the key data
        '"alice@example.com {key}',
    ],
)
def test_malformed_allowed_signers_lines_are_input_errors(keys, line: str) -> None:
    ed = pub(keys["ed25519"])
    text = line.format(key=ed, b64=ed.split()[1]) + "\n"
    with pytest.raises(TfgateError, match=r":1: "):
        allowed_signers.parse(text, Path("signers"))


def test_unsupported_key_types_are_kept_but_never_match(keys) -> None:
    dss = "ssh-dss " + base64.b64encode(_s(b"ssh-dss") + _mpint(7) * 4).decode()
    s = allowed_signers.parse(f"old@example.com {dss}\nalice@example.com {pub(keys['ed25519'])}\n")
    assert s.entries[0].key is None and s.entries[1].key is not None


def test_tfgate_and_openssh_agree_on_allowed_signers(keys, tmp_path: Path) -> None:
    """The same file, signature and question: ssh-keygen -Y verify and tfgate give the same answer."""
    ed, ec, rsa = pub(keys["ed25519"]), pub(keys["ecdsa256"]), pub(keys["rsa"])
    past = (datetime.now(timezone.utc) - timedelta(days=2)).strftime("%Y%m%d")
    future = (datetime.now(timezone.utc) + timedelta(days=2)).strftime("%Y%m%d")
    signers = tmp_path / "allowed_signers"
    signers.write_text(
        f"alice@example.com,!eve@example.com {ed}\n"
        f'*@ops.example.com namespaces="git" {ec}\n'
        f'bob@example.com valid-before="{past}Z" {rsa}\n'
        f'carol@example.com valid-after="{future}Z" {rsa}\n'
    )
    parsed = allowed_signers.load(signers)
    msg = tmp_path / "m"
    msg.write_bytes(b"approval\n")
    now = datetime.now(timezone.utc)
    cases = [
        ("ed25519", "alice@example.com", "tfgate"),
        ("ed25519", "eve@example.com", "tfgate"),
        ("ed25519", "bob@example.com", "tfgate"),
        ("ecdsa256", "x@ops.example.com", "tfgate"),
        ("ecdsa256", "x@ops.example.com", "git"),
        ("rsa", "bob@example.com", "tfgate"),
        ("rsa", "carol@example.com", "tfgate"),
    ]
    for kind, principal, namespace in cases:
        keygen_sign(keys[kind], msg, namespace)
        theirs = keygen_verify(signers, principal, msg, namespace)
        key = sshsig.verify(sshsig.parse((tmp_path / "m.sig").read_bytes()), msg.read_bytes(), namespace)
        ours = parsed.authorize(key, principal, namespace, now).ok
        assert ours == theirs, (kind, principal, namespace, theirs)
    assert [parsed.authorize(sshsig.PublicKey.from_openssh(ed), "alice@example.com", "tfgate", now).ok] == [
        True
    ]


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(TfgateError, match="not found"):
        allowed_signers.load(tmp_path / "nope")


def test_cryptography_not_imported_by_parsing() -> None:
    code = (
        "import sys; from tfgate.approvals import sshsig, allowed_signers, commands, judge; from tfgate import pipeline; "
        "print('cryptography' in sys.modules)"
    )
    out = subprocess.run(
        [__import__("sys").executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
