"""A real SMTP server for the alert tests (aiosmtpd).

Usage: smtp_sink.py PORT OUT_DIR MODE CERT KEY USER PASSWORD
MODE is "starttls" (STARTTLS required before AUTH) or "tls" (implicit TLS). Every
message is written to OUT_DIR as JSON: envelope sender, recipients, the main headers
(Message-ID and Date included, null when missing) and the bodies.
Prints "ready" once listening.
"""

import asyncio
import email
import email.policy
import json
import os
import ssl
import sys
import uuid

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def main():
    port, out, mode, cert, key, user, password = sys.argv[1:8]
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            text = msg.get_body(preferencelist=("plain",))
            html = msg.get_body(preferencelist=("html",))
            doc = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "subject": str(msg["subject"]),
                "from": str(msg["from"]),
                "to": str(msg["to"]),
                "message_id": msg["message-id"] and str(msg["message-id"]),
                "date": msg["date"] and str(msg["date"]),
                "text": text.get_content() if text else None,
                "html": html.get_content() if html else None,
                "authenticated": session.authenticated,
                "tls": session.ssl is not None
                or server.transport.get_extra_info("sslcontext") is not None,
            }
            path = os.path.join(out, uuid.uuid4().hex + ".json")
            with open(path + ".tmp", "w") as f:
                json.dump(doc, f)
            os.rename(path + ".tmp", path)
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok)

    kwargs = dict(
        hostname="127.0.0.1",
        port=int(port),
        authenticator=authenticator,
        auth_required=True,
    )
    if mode == "tls":
        kwargs.update(ssl_context=ctx, auth_require_tls=False)
    else:
        kwargs.update(tls_context=ctx, require_starttls=True, auth_require_tls=True)
    controller = Controller(Handler(), **kwargs)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
