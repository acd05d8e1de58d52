"""A local stand-in for an OpenAI-compatible server: POST /v1/chat/completions with
`stream: true` answers in the real wire format (server-sent `data:` chunks, then [DONE])."""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support.loopback import LoopbackServer, QuietHandler


class FakeLLM(LoopbackServer):
    @contextmanager
    def behaving(self, mode: str) -> Iterator[None]:
        """Answers as `mode` (error, slow) inside the block, normally again after it."""
        self.mode = mode
        try:
            yield
        finally:
            self.mode = "ok"

    def __init__(self, reply: str = "Parcels ship within two days [1].") -> None:
        self.reply = reply
        self.mode = "ok"  # ok | error | slow
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                fake.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                if fake.mode == "error":
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "model overloaded"}}')
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                if fake.mode == "slow":
                    time.sleep(3)
                for position, word in enumerate(fake.reply.split(" ")):
                    delta = {"content": word if position == 0 else " " + word}
                    chunk = {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "choices": [{"index": 0, "delta": delta}],
                    }
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")

        super().__init__(Handler)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
