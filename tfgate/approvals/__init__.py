"""Signed approvals: statements, OpenSSH signatures, allowed signers, the judge that counts them, the commands."""
