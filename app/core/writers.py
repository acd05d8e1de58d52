"""Documents that one process writes alone.

FerretDB applies concurrent updates of one document without isolation: `$inc` upserts from two
processes lose counts (measured: 968 of 3,600 kept). So a counter that several processes add to
is split into one document per writing process (`this_process().name` in its key), a process
sends its updates of one document one at a time (`serialised`), and readers sum the documents.
MongoDB would take the concurrent `$inc`; the split costs it a few documents.
"""

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Hashable


class ProcessWriter:
    """This process's writer name, and a lock per document it writes."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.name = f"{self.pid}-{secrets.token_hex(4)}"
        # Each lock with the number of calls holding or awaiting it, dropped at zero.
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def serialised(self, document: Hashable) -> AsyncIterator[None]:
        """Holds the lock of one document (any hashable naming it) while the block writes it."""
        lock, users = self._locks.get(document, (asyncio.Lock(), 0))
        self._locks[document] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[document]
            if users == 1:
                del self._locks[document]
            else:
                self._locks[document] = (lock, users - 1)


_writer: ProcessWriter | None = None


def this_process() -> ProcessWriter:
    """Per process, never inherited across a fork: two processes must never share a document."""
    global _writer
    if _writer is None or _writer.pid != os.getpid():
        _writer = ProcessWriter()
    return _writer
