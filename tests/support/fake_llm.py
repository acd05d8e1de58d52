"""A local stand-in for an OpenAI-compatible server: POST /v1/chat/completions with
`stream: true` answers in the real wire format (server-sent `data:` chunks, then [DONE]); asked
for `stream_options.include_usage`, it ends with a usage chunk as OpenAI does."""

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
        # What the usage chunk reports; None: no usage chunk (servers that do not report it).
        self.usage: tuple[int, int] | None = (100, 20)
        fake = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                fake.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
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
                wants_usage = (body.get("stream_options") or {}).get("include_usage")
                if wants_usage and fake.usage is not None:
                    prompt, completion = fake.usage
                    usage = {
                        "prompt_tokens": prompt,
                        "completion_tokens": completion,
                        "total_tokens": prompt + completion,
                    }
                    last = {"id": "c1", "object": "chat.completion.chunk", "choices": []}
                    self.wfile.write(f"data: {json.dumps({**last, 'usage': usage})}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")

        super().__init__(Handler)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
