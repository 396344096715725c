"""Serves the built page (web/dist) on this machine only:

    cd web && npm ci && npm run build && python serve.py   # then open http://localhost:8000

Plain ``python -m http.server -d dist`` works too; this server adds what it lacks: the MIME
types of ES modules, WebAssembly and ONNX files whatever the system's tables say, and the
cross-origin isolation headers (COOP/COEP) that let onnxruntime-web run on several threads.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

DIST = Path(__file__).resolve().parent / "dist"

logger = logging.getLogger("serve")


class PageHandler(SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".html": "text/html",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".css": "text/css",
        ".wasm": "application/wasm",
        ".onnx": "application/octet-stream",
        ".png": "image/png",
    }

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:
        logger.debug(format, *args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="port on localhost (0: any free port)")
    parser.add_argument("--directory", type=Path, default=DIST, help="the built page")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(message)s", level=logging.INFO)
    if not (args.directory / "index.html").is_file():
        logger.error(
            "error: %s/index.html: no such file (build the page first: cd web && npm ci && npm run build)", args.directory
        )
        return 1
    handler = functools.partial(PageHandler, directory=str(args.directory))
    with ThreadingHTTPServer(("127.0.0.1", args.port), handler) as server:
        logger.info("serving %s at http://localhost:%d (Ctrl-C stops)", args.directory, server.server_address[1])
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
