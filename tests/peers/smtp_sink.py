#!/usr/bin/env python3
"""Loopback SMTP sink for tests, built on aiosmtpd (PyPI: aiosmtpd).

The e-mail tests start it (tests/common/smtp.rs) on a free port with --http-port 0
and read the NNNN.json files back.

Accepts every message (no auth, no TLS) and stores each one in --dir as
  NNNN.eml   the message exactly as received (DATA, CRLF line endings)
  NNNN.json  {"n", "mail_from", "rcpt_tos", "peer", "received_at",
              "subject", "from", "to", "body" (first text part, decoded)}
so a test can read mail back from the files. It also serves the same JSON
over a tiny HTTP API on --http-port (0 = off):
  GET  /messages        -> list of all NNNN.json objects
  GET  /messages/N.eml  -> raw message N
  DELETE /messages      -> delete all stored messages
Listens on 127.0.0.1 only.

Usage: smtp-sink.py --dir DIR [--port 2525] [--http-port 8025] [--auth]
  --auth  advertise AUTH PLAIN/LOGIN without TLS and accept any user/password
          (the login is recorded as "auth_user" in NNNN.json)
"""
import argparse
import datetime
import email
import email.policy
import glob
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

LOCK = threading.Lock()


def first_text(msg):
    if msg.is_multipart():
        for part in msg.walk():
            if part.get_content_type() == "text/plain":
                return part.get_content()
        for part in msg.walk():
            if part.get_content_maintype() == "text":
                return part.get_content()
        return ""
    try:
        return msg.get_content()
    except Exception:
        return msg.get_payload()


def session_user(session):
    data = getattr(session, "auth_data", None)
    login = getattr(data, "login", None)
    if isinstance(login, bytes):
        return login.decode("utf-8", "replace")
    return login


def accept_any(server, session, envelope, mechanism, auth_data):
    """--auth: advertise AUTH PLAIN/LOGIN and accept any credentials."""
    from aiosmtpd.smtp import AuthResult
    return AuthResult(success=True, auth_data=auth_data)


class Sink:
    def __init__(self, d):
        self.d = d

    def _next(self):
        return len(glob.glob(os.path.join(self.d, "*.eml"))) + 1

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        with LOCK:
            n = self._next()
            with open(os.path.join(self.d, f"{n:04d}.eml"), "wb") as f:
                f.write(raw)
            meta = {
                "n": n,
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "peer": list(session.peer) if session.peer else None,
                "received_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "subject": str(msg.get("Subject", "")),
                "from": str(msg.get("From", "")),
                "to": str(msg.get("To", "")),
                "auth_user": session_user(session),
                "body": first_text(msg).replace("\r\n", "\n"),
            }
            with open(os.path.join(self.d, f"{n:04d}.json"), "w") as f:
                json.dump(meta, f, indent=2)
        print(json.dumps({k: meta[k] for k in ("n", "mail_from", "rcpt_tos", "subject")}), flush=True)
        return "250 Message accepted for delivery"


def http_server(d, port):
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def _send(self, code, body, ctype="application/json"):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path.rstrip("/") == "/messages":
                with LOCK:
                    items = []
                    for p in sorted(glob.glob(os.path.join(d, "*.json"))):
                        with open(p) as f:
                            items.append(json.load(f))
                return self._send(200, json.dumps(items).encode())
            if self.path.startswith("/messages/") and self.path.endswith(".eml"):
                name = os.path.basename(self.path)
                try:
                    n = int(name[:-4])
                except ValueError:
                    return self._send(400, b"{}")
                p = os.path.join(d, f"{n:04d}.eml")
                if os.path.exists(p):
                    with open(p, "rb") as f:
                        return self._send(200, f.read(), "message/rfc822")
            return self._send(404, b"{}")

        def do_DELETE(self):
            if self.path.rstrip("/") == "/messages":
                with LOCK:
                    for p in glob.glob(os.path.join(d, "*.eml")) + glob.glob(os.path.join(d, "*.json")):
                        os.remove(p)
                return self._send(200, b"{}")
            return self._send(404, b"{}")

    srv = ThreadingHTTPServer(("127.0.0.1", port), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=2525)
    ap.add_argument("--http-port", type=int, default=8025)
    ap.add_argument("--auth", action="store_true",
                    help="advertise AUTH PLAIN/LOGIN (without TLS) and accept any credentials")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    kw = {}
    if a.auth:
        kw = dict(authenticator=accept_any, auth_require_tls=False, auth_required=False)
    ctl = Controller(Sink(a.dir), hostname="127.0.0.1", port=a.port, **kw)
    ctl.start()
    if a.http_port:
        http_server(a.dir, a.http_port)
    print(f"smtp-sink: smtp://127.0.0.1:{a.port} http://127.0.0.1:{a.http_port} dir={a.dir}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            signal.pause()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        ctl.stop()


if __name__ == "__main__":
    main()
