"""A throwaway certificate authority and a server certificate it signs, for HTTPS tests."""

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certificates:
    ca_file: Path  # what a client trusts
    cert_file: Path  # the server's chain
    key_file: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


def issue_certificates(directory: Path, hostname: str) -> Certificates:
    """A CA, and a certificate for `hostname` (its only name) signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=BotSmith test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-new", *key, "-keyout", "server.key", "-out", "server.csr",
        "-subj", f"/CN={hostname}",
        cwd=directory,
    )  # fmt: skip
    (directory / "server.ext").write_text(
        f"subjectAltName=DNS:{hostname}\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\n"
        "subjectKeyIdentifier=hash\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.pem",
        cwd=directory,
    )  # fmt: skip
    return Certificates(directory / "ca.pem", directory / "server.pem", directory / "server.key")
