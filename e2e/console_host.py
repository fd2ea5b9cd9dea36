"""The consoles' own addresses, served from e2e/pages over HTTPS, so the real extension meets a test page at
https://web.whatsapp.com/ exactly as an agent's browser would, and the shipped profiles match unchanged.

Chromium is pointed here with --host-resolver-rules (every console host → this server) and accepts its
self-signed certificate with --ignore-certificate-errors. Each page POSTs the messages it really sends to
/e2e/sent, which this server records, so a test can prove that a blocked message never left.
"""

from __future__ import annotations

import datetime
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PAGES = Path(__file__).resolve().parent / "pages"
# (host, path prefix) → the test page standing in for that console
CONSOLES = {
    ("web.whatsapp.com", "/"): "whatsapp.html",
    ("web.telegram.org", "/k/"): "telegram_k.html",
    ("web.telegram.org", "/a/"): "telegram_a.html",
    ("www.messenger.com", "/"): "messenger.html",
    # an in-house console: the generic profile runs here once an admin adds this address to it
    ("crm.example.com", "/"): "generic.html",
}
HOSTS = sorted({host for host, _ in CONSOLES})
# the shipped profiles' consoles, which the extension knows without any profile change
URLS = {page.removesuffix(".html"): f"https://{host}{prefix}" for (host, prefix), page in CONSOLES.items()
        if page != "generic.html"}
IN_HOUSE_URL = "https://crm.example.com/"


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "veil e2e consoles")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in HOSTS]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "consoles.pem", folder / "consoles.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class ConsoleHost:
    def __init__(self, folder: Path):
        self.sent: list[dict] = []
        self.lock = threading.Lock()
        host = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet: the tests say what matters
                pass

            def do_GET(self):
                name = host.page_for(self.headers.get("Host", "").split(":")[0], self.path.split("?")[0])
                if name is None:
                    self.send_error(404)
                    return
                body = (PAGES / name).read_bytes()
                self.send_response(200)
                kind = "text/html" if name.endswith(".html") else "text/javascript"
                self.send_header("Content-Type", f"{kind}; charset=utf-8")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path != "/e2e/sent":
                    self.send_error(404)
                    return
                try:
                    record = json.loads(raw)
                except ValueError:
                    record = {"raw": raw.decode("utf-8", "replace")}
                with host.lock:
                    host.sent.append({"host": self.headers.get("Host", ""), "body": record})
                self.send_response(204)
                self.end_headers()

        cert, key = self_signed(folder)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def page_for(self, host: str, path: str) -> str | None:
        candidate = PAGES / path.rsplit("/", 1)[-1]
        if path.rsplit("/", 1)[-1] and candidate.is_file() and candidate.parent == PAGES:
            return candidate.name  # a page's own script or style, beside it
        for (console_host, prefix), page in CONSOLES.items():
            if host == console_host and path.startswith(prefix):
                return page
        return None

    def sent_texts(self) -> list[str]:
        with self.lock:
            return [str(item["body"].get("text", item["body"])) for item in self.sent]

    def chromium_flags(self) -> list[str]:
        rules = ", ".join(f"MAP {host} 127.0.0.1:{self.port}" for host in HOSTS)
        return [f"--host-resolver-rules={rules}", "--ignore-certificate-errors"]

    def __enter__(self) -> ConsoleHost:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
