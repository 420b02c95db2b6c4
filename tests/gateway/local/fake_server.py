"""A stand-in for vLLM's OpenAI server (and the gateway) in supervisor tests; starts at once.

Takes the same command line (`--host`, `--port`, everything else ignored), answers `GET /health`
with 200, and forks one worker process the way vLLM forks its engine core, so tests see whether a
whole process group is cleaned up. On SIGTERM it stops its worker and exits, as vLLM does. Every pid
it owns is written to `$FAKE_PID_DIR/<pid>` for the test to check afterwards.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = 200 if self.path == "/health" else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args, _ = parser.parse_known_args()
    pid_dir = Path(os.environ["FAKE_PID_DIR"])

    worker = os.fork()
    if worker == 0:  # the "engine core": lives until killed
        (pid_dir / str(os.getpid())).write_text("worker")
        while True:
            time.sleep(3600)
    (pid_dir / str(os.getpid())).write_text("server")

    def stop(signum: int, frame: object) -> None:
        os.kill(worker, signal.SIGTERM)
        os.waitpid(worker, 0)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    delay = float(os.environ.get("FAKE_START_DELAY", "0"))
    time.sleep(delay)
    server = ThreadingHTTPServer((args.host, args.port), _Health)
    server.serve_forever()


if __name__ == "__main__":
    main()
