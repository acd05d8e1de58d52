"""A local OpenAI-compatible /v1/embeddings server with deterministic vectors: words are mapped
to concepts (so that 'automobile' and 'vehicles' meet) and hashed into 32 dimensions."""

import json
import re
import zlib
from typing import Any

from tests.support.loopback import LoopbackServer, QuietHandler

CONCEPTS = {"automobile": "vehicle", "car": "vehicle", "vehicles": "vehicle", "vehicle": "vehicle"}
DIMENSIONS = 32


def embed(text: str) -> list[float]:
    vector = [0.0] * DIMENSIONS
    for word in re.findall(r"\w+", text.lower()):
        concept = CONCEPTS.get(word, word)
        vector[zlib.crc32(concept.encode()) % DIMENSIONS] += 1.0
    return vector


class FakeEmbeddings(LoopbackServer):
    def __init__(self) -> None:
        self.inputs: list[str] = []
        self.failing = False
        fake = self

        class Handler(QuietHandler):
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
                payload = {"object": "list", "data": data, "model": body["model"]}
                self.send_body(200, "application/json", json.dumps(payload).encode())

        super().__init__(Handler)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
