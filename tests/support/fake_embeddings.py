"""A local OpenAI-compatible /v1/embeddings server with deterministic vectors: words are mapped
to concepts (so that 'automobile' and 'vehicles' meet) and hashed into 32 dimensions."""

import json
import re
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

CONCEPTS = {"automobile": "vehicle", "car": "vehicle", "vehicles": "vehicle", "vehicle": "vehicle"}
DIMENSIONS = 32


def embed(text: str) -> list[float]:
    vector = [0.0] * DIMENSIONS
    for word in re.findall(r"\w+", text.lower()):
        concept = CONCEPTS.get(word, word)
        vector[zlib.crc32(concept.encode()) % DIMENSIONS] += 1.0
    return vector


class FakeEmbeddings:
    def __init__(self) -> None:
        self.inputs: list[str] = []
        self.failing = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body: dict[str, Any] = json.loads(
                    self.rfile.read(int(self.headers["Content-Length"]))
                )
                if fake.failing:
                    self.send_response(503)
                    self.end_headers()
                    return
                texts = body["input"]
                fake.inputs += texts
                data = [
                    {"object": "embedding", "index": i, "embedding": embed(t)}
                    for i, t in enumerate(texts)
                ]
                payload = json.dumps(
                    {"object": "list", "data": data, "model": body["model"]}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> Self:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
