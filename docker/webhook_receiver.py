"""An example webhook receiver: prints each POSTed event as one JSON line and answers 200.

Used by compose.yaml's `webhook` profile; listens on $WEBHOOK_RECEIVER_BIND (0.0.0.0), port
$WEBHOOK_RECEIVER_PORT (8080).
"""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            print(json.dumps(json.loads(body), separators=(",", ":")), flush=True)
        except ValueError:
            print(f"not JSON: {body[:200]!r}", flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    address = (os.environ.get("WEBHOOK_RECEIVER_BIND", "0.0.0.0"), int(os.environ.get("WEBHOOK_RECEIVER_PORT", "8080")))
    print(f"webhook receiver listening on {address[0]}:{address[1]}", flush=True)
    ThreadingHTTPServer(address, Receiver).serve_forever()
