"""A real SMTP server for otv's mail tests (aiosmtpd): stores every accepted message in a
Maildir, and refuses some recipients the way real servers do, so that the tests see both
kinds of refusal:

- a recipient whose local part is ``refused`` gets ``550`` (permanent),
- one whose local part is ``later`` gets ``451`` (try again later).

Usage: python3 smtp_sink.py HOST PORT MAILDIR [CERT KEY]  (prints ``ready`` when it listens).
With CERT and KEY (PEM files) it requires STARTTLS before anything else."""

import mailbox
import ssl
import sys
import time

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, path):
        self.maildir = mailbox.Maildir(path, create=True)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0]
        if local == "refused":
            return "550 5.1.1 mailbox unavailable"
        if local == "later":
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.maildir.add(envelope.original_content)
        return "250 Message accepted for delivery"


def main():
    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    kwargs = {}
    if len(sys.argv) == 6:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[4], sys.argv[5])
        kwargs = {"tls_context": context, "require_starttls": True}
    controller = Controller(Sink(path), hostname=host, port=port, server_kwargs=kwargs)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
