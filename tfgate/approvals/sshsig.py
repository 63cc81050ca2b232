"""OpenSSH signatures (``ssh-keygen -Y sign``, PROTOCOL.sshsig), parsed and verified in-process.

Supported keys: ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa (signature algorithms rsa-sha2-256
and rsa-sha2-512 only, like OpenSSH; at least 2048 bits), and the FIDO security keys
sk-ssh-ed25519@openssh.com and sk-ecdsa-sha2-nistp256@openssh.com (PROTOCOL.u2f; the "user present"
flag must be set). Certificates and DSA are refused. ``cryptography`` is imported only when verifying.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

MAGIC = b"SSHSIG"
BEGIN = "-----BEGIN SSH SIGNATURE-----"
END = "-----END SSH SIGNATURE-----"
HASH_ALGORITHMS = ("sha256", "sha512")
RSA_SIGNATURE_ALGORITHMS = ("rsa-sha2-256", "rsa-sha2-512")
MIN_RSA_BITS = 2048
SK_USER_PRESENT = 0x01

ED25519 = "ssh-ed25519"
RSA = "ssh-rsa"
SK_ED25519 = "sk-ssh-ed25519@openssh.com"
SK_ECDSA = "sk-ecdsa-sha2-nistp256@openssh.com"
ECDSA_CURVES = {
    "ecdsa-sha2-nistp256": ("nistp256", "SECP256R1", "SHA256"),
    "ecdsa-sha2-nistp384": ("nistp384", "SECP384R1", "SHA384"),
    "ecdsa-sha2-nistp521": ("nistp521", "SECP521R1", "SHA512"),
}
KEY_TYPES = (ED25519, *ECDSA_CURVES, RSA, SK_ED25519, SK_ECDSA)


class SignatureError(Exception):
    """A signature that does not verify. ``kind``: malformed, unsupported, namespace or bad."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# --- SSH wire format -------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise SignatureError("malformed", f"{self.what}: truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self._take(1)[0]

    def u32(self) -> int:
        return struct.unpack(">I", self._take(4))[0]

    def string(self) -> bytes:
        return self._take(self.u32())

    def text(self) -> str:
        try:
            return self.string().decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureError("malformed", f"{self.what}: a name is not UTF-8") from None

    def mpint(self) -> int:
        raw = self.string()
        if raw and raw[0] & 0x80:
            raise SignatureError("malformed", f"{self.what}: negative integer")
        return int.from_bytes(raw, "big")

    def end(self) -> None:
        if self.pos != len(self.data):
            raise SignatureError("malformed", f"{self.what}: trailing data")


def ssh_string(data: bytes) -> bytes:
    """Encode an SSH ``string`` (uint32 length + bytes)."""
    return struct.pack(">I", len(data)) + data


# --- keys ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicKey:
    """An SSH public key: its type name and canonical wire blob (equality is blob equality)."""

    type: str
    blob: bytes

    @property
    def fingerprint(self) -> str:
        """OpenSSH's SHA256 fingerprint, as ``ssh-keygen -l`` prints it."""
        digest = base64.b64encode(hashlib.sha256(self.blob).digest()).decode().rstrip("=")
        return f"SHA256:{digest}"

    def openssh(self) -> str:
        """The ``TYPE BASE64`` form used in authorized_keys and allowed_signers."""
        return f"{self.type} {base64.b64encode(self.blob).decode()}"

    @classmethod
    def from_blob(cls, blob: bytes) -> PublicKey:
        """Parse a wire blob; raises SignatureError for a type tfgate cannot verify."""
        r = _Reader(blob, "public key")
        kind = r.text()
        if kind not in KEY_TYPES:
            if "-cert-" in kind:
                raise SignatureError("unsupported", f"certificate keys are not supported ({kind})")
            raise SignatureError("unsupported", f"unsupported key type {kind!r}")
        if kind in (ED25519, SK_ED25519):
            if len(r.string()) != 32:
                raise SignatureError("malformed", "public key: Ed25519 key is not 32 bytes")
        elif kind in ECDSA_CURVES or kind == SK_ECDSA:
            curve = r.text()
            want = ECDSA_CURVES[kind][0] if kind in ECDSA_CURVES else "nistp256"
            if curve != want:
                raise SignatureError("malformed", f"public key: curve {curve!r} does not match {kind}")
            r.string()
        else:  # ssh-rsa
            r.mpint()
            r.mpint()
        if kind in (SK_ED25519, SK_ECDSA):
            r.string()  # application
        r.end()
        return cls(kind, blob)

    @classmethod
    def from_openssh(cls, text: str) -> PublicKey:
        """Parse ``TYPE BASE64 [comment]``; the declared type must match the blob's."""
        parts = text.split()
        if len(parts) < 2:
            raise SignatureError("malformed", "expected `TYPE BASE64` public key")
        try:
            blob = base64.b64decode(parts[1], validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("malformed", "public key is not valid base64") from None
        key = cls.from_blob(blob)
        if key.type != parts[0]:
            raise SignatureError("malformed", f"key type {parts[0]!r} does not match its data ({key.type})")
        return key


# --- signatures ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SshSignature:
    """A parsed SSHSIG object (before verification)."""

    public_key: PublicKey
    namespace: str
    hash_algorithm: str
    signature_algorithm: str
    signature: bytes  # the inner signature blob (string alg, string sig[, flags, counter])


def dearmor(text: bytes | str) -> bytes:
    """The SSHSIG blob inside ``-----BEGIN SSH SIGNATURE-----`` armor."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise SignatureError("malformed", "signature file is not ASCII armor") from None
    lines = [line.strip() for line in text.strip().splitlines()]
    if not lines or lines[0] != BEGIN:
        raise SignatureError("malformed", "missing -----BEGIN SSH SIGNATURE----- header")
    if lines[-1] != END or len(lines) < 3:
        raise SignatureError("malformed", "missing -----END SSH SIGNATURE----- footer")
    try:
        return base64.b64decode("".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("malformed", "signature is not valid base64") from None


def armor(blob: bytes) -> str:
    """Armor an SSHSIG blob the way ssh-keygen does (76-column base64)."""
    b64 = base64.b64encode(blob).decode()
    body = "\n".join(b64[i : i + 76] for i in range(0, len(b64), 76))
    return f"{BEGIN}\n{body}\n{END}\n"


def parse(data: bytes | str) -> SshSignature:
    """Parse an armored SSHSIG; raises SignatureError(kind=malformed|unsupported)."""
    r = _Reader(dearmor(data), "signature")
    if r._take(6) != MAGIC:
        raise SignatureError("malformed", "signature: missing SSHSIG preamble")
    version = r.u32()
    if version != 1:
        raise SignatureError("unsupported", f"signature version {version} is not supported")
    key = PublicKey.from_blob(r.string())
    namespace = r.text()
    r.string()  # reserved
    hash_alg = r.text()
    sig = r.string()
    r.end()
    if hash_alg not in HASH_ALGORITHMS:
        raise SignatureError("unsupported", f"unsupported hash algorithm {hash_alg!r}")
    alg = _Reader(sig, "signature").text()
    return SshSignature(key, namespace, hash_alg, alg, sig)


def signed_data(namespace: str, hash_algorithm: str, message: bytes) -> bytes:
    """The bytes an SSHSIG signature is made over (PROTOCOL.sshsig)."""
    digest = hashlib.new(hash_algorithm, message).digest()
    return (
        MAGIC
        + ssh_string(namespace.encode())
        + ssh_string(b"")
        + ssh_string(hash_algorithm.encode())
        + ssh_string(digest)
    )


def verify(sig: SshSignature, message: bytes, namespace: str) -> PublicKey:
    """Verify ``sig`` over ``message`` in ``namespace``; returns the signing key or raises SignatureError."""
    if sig.namespace != namespace:
        raise SignatureError("namespace", f"signed for namespace {sig.namespace!r}, not {namespace!r}")
    data = signed_data(namespace, sig.hash_algorithm, message)
    try:
        ok = _verify_raw(sig.public_key, sig.signature, data)
    except SignatureError:
        raise
    except Exception as exc:  # cryptography rejects malformed points, lengths, ...
        raise SignatureError("bad", f"signature does not verify ({type(exc).__name__})") from None
    if not ok:
        raise SignatureError("bad", "signature does not verify")
    return sig.public_key


def _verify_raw(key: PublicKey, sig_blob: bytes, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    k = _Reader(key.blob, "public key")
    k.text()
    s = _Reader(sig_blob, "signature")
    alg = s.text()
    try:
        if key.type == ED25519:
            _expect(alg, ED25519)
            raw = s.string()
            s.end()
            ed25519.Ed25519PublicKey.from_public_bytes(k.string()).verify(raw, data)
        elif key.type in ECDSA_CURVES:
            _expect(alg, key.type)
            _, curve, hash_name = ECDSA_CURVES[key.type]
            k.text()
            pub = ec.EllipticCurvePublicKey.from_encoded_point(getattr(ec, curve)(), k.string())
            rs = _Reader(s.string(), "ECDSA signature")
            der = encode_dss_signature(rs.mpint(), rs.mpint())
            rs.end()
            s.end()
            pub.verify(der, data, ec.ECDSA(getattr(hashes, hash_name)()))
        elif key.type == RSA:
            if alg not in RSA_SIGNATURE_ALGORITHMS:
                raise SignatureError(
                    "unsupported", f"RSA signature algorithm {alg!r} is not allowed (use rsa-sha2-256/512)"
                )
            e, n = k.mpint(), k.mpint()
            if n.bit_length() < MIN_RSA_BITS:
                raise SignatureError(
                    "unsupported", f"RSA key of {n.bit_length()} bits (minimum {MIN_RSA_BITS})"
                )
            raw = s.string()
            s.end()
            size = (n.bit_length() + 7) // 8
            if len(raw) > size:
                return False
            raw = raw.rjust(size, b"\0")
            hash_alg = hashes.SHA256() if alg == "rsa-sha2-256" else hashes.SHA512()
            rsa.RSAPublicNumbers(e, n).public_key().verify(raw, data, padding.PKCS1v15(), hash_alg)
        elif key.type in (SK_ED25519, SK_ECDSA):
            _expect(alg, key.type)
            if key.type == SK_ED25519:
                pk = k.string()
            else:
                k.text()
                pk = k.string()
            application = k.string()
            raw = s.string()
            flags = s.u8()
            counter = s.u32()
            s.end()
            if not flags & SK_USER_PRESENT:
                raise SignatureError("bad", "security-key signature made without user presence (no touch)")
            blob = (
                hashlib.sha256(application).digest()
                + bytes([flags])
                + struct.pack(">I", counter)
                + hashlib.sha256(data).digest()
            )
            if key.type == SK_ED25519:
                ed25519.Ed25519PublicKey.from_public_bytes(pk).verify(raw, blob)
            else:
                rs = _Reader(raw, "ECDSA signature")
                der = encode_dss_signature(rs.mpint(), rs.mpint())
                rs.end()
                pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), pk)
                pub.verify(der, blob, ec.ECDSA(hashes.SHA256()))
        else:  # pragma: no cover - from_blob admits only KEY_TYPES
            raise SignatureError("unsupported", f"unsupported key type {key.type!r}")
    except InvalidSignature:
        return False
    return True


def _expect(alg: str, want: str) -> None:
    if alg != want:
        raise SignatureError("bad", f"signature algorithm {alg!r} does not match the key ({want})")


def sign_ed25519(private_key: object, message: bytes, namespace: str, hash_algorithm: str = "sha512") -> str:
    """An armored SSHSIG over ``message`` by an Ed25519 ``cryptography`` private key, byte for byte what
    ``ssh-keygen -Y sign`` writes (used by ``tfgate demo`` for its throwaway key where OpenSSH is absent)."""
    from cryptography.hazmat.primitives import serialization

    raw_pub = private_key.public_key().public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    key_blob = ssh_string(ED25519.encode()) + ssh_string(raw_pub)
    raw_sig = private_key.sign(signed_data(namespace, hash_algorithm, message))  # type: ignore[attr-defined]
    blob = (
        MAGIC
        + struct.pack(">I", 1)
        + ssh_string(key_blob)
        + ssh_string(namespace.encode())
        + ssh_string(b"")
        + ssh_string(hash_algorithm.encode())
        + ssh_string(ssh_string(ED25519.encode()) + ssh_string(raw_sig))
    )
    return armor(blob)
