"""A throw-away PKI built with the `openssl` command line (not by fixcurve), so the tests
exercise fixcurve against certificates made the way counterparties make them.

    pki = OpenSslPki(tmpdir)          # root CA, intermediate CA, an unrelated "other" CA
    leaf = pki.root.issue("client1", "client")   # -> Leaf(cert, key, combined)
    pki.root.revoke(leaf); crl = pki.root.gencrl()

RSA keys throughout: QuickFIX 1.15 loads only RSA/DSA keys.
"""

import subprocess
from dataclasses import dataclass
from pathlib import Path

EXTENSIONS = """
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ client ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ server ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ nodigsig ]
basicConstraints = CA:FALSE
keyUsage = critical, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ codesign ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def run(*args, cwd=None):
    cp = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd)
    if cp.returncode != 0:
        raise RuntimeError(f"{args}: {cp.stderr}")
    return cp.stdout


@dataclass
class Leaf:
    cert: Path
    key: Path
    combined: Path


class OpenSslCa:
    def __init__(self, root: Path, name: str, parent: "OpenSslCa | None" = None):
        self.dir = root / name
        self.dir.mkdir(parents=True)
        (self.dir / "newcerts").mkdir()
        (self.dir / "index.txt").write_text("")
        (self.dir / "serial").write_text("1000\n")
        (self.dir / "crlnumber").write_text("01\n")
        self.cnf = self.dir / "ca.cnf"
        self.cnf.write_text(
            f"""[ ca ]
default_ca = CA_default
[ CA_default ]
dir = {self.dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = $dir/ca.crt
private_key = $dir/ca.key
default_md = sha256
default_days = 365
default_crl_days = 30
policy = policy_any
unique_subject = no
copy_extensions = none
[ policy_any ]
commonName = supplied
organizationName = optional
{EXTENSIONS}"""
        )
        self.cert = self.dir / "ca.crt"
        self.key = self.dir / "ca.key"
        subj = f"/O=interop test/CN={name}"
        if parent is None:
            run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                "-out", self.cert, "-subj", subj, "-days", "3650", "-config", self.cnf,
                "-extensions", "v3_ca")
        else:
            csr = self.dir / "ca.csr"
            run("openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                "-out", csr, "-subj", subj)
            parent._sign(csr, self.cert, "v3_ca")
        self.parent = parent

    def _sign(self, csr, out, ext, start=None, end=None):
        args = ["openssl", "ca", "-batch", "-notext", "-config", self.cnf, "-extensions", ext,
                "-in", csr, "-out", out]
        if start:
            args += ["-startdate", start]
        if end:
            args += ["-enddate", end]
        run(*args)

    def issue(self, cn, kind="client", start=None, end=None) -> Leaf:
        base = self.dir / cn
        key, csr, crt = base.with_suffix(".key"), base.with_suffix(".csr"), base.with_suffix(".crt")
        run("openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
            "-subj", f"/O=interop test/CN={cn}")
        self._sign(csr, crt, kind, start, end)
        key.chmod(0o600)
        combined = base.with_suffix(".pem")
        combined.write_text(crt.read_text() + key.read_text())
        combined.chmod(0o600)
        return Leaf(crt, key, combined)

    def revoke(self, leaf: Leaf):
        run("openssl", "ca", "-config", self.cnf, "-revoke", leaf.cert)

    def gencrl(self) -> Path:
        out = self.dir / "ca.crl"
        run("openssl", "ca", "-config", self.cnf, "-gencrl", "-out", out)
        return out


class OpenSslPki:
    def __init__(self, root: Path):
        self.root = OpenSslCa(root, "root")
        self.inter = OpenSslCa(root, "inter", parent=self.root)
        self.other = OpenSslCa(root, "other")
