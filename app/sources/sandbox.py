"""File extraction in a child process (`python -m app.sources.sandbox`) with limits on its
address space (RLIMIT_AS), CPU time (RLIMIT_CPU) and written files, and an environment without
the service's credentials. A file that exhausts them, or crashes a parser, fails its source
with the reason; the worker (or the API, which ingests in-process without Redis) carries on.

The parent writes one JSON line (file name and limits) then the file's bytes to the child's
stdin; the child answers on stdout with the text (exit 0) or the reason it gave up (exit 10),
or exits 11 when an allocation failed.
"""

import asyncio
import json
import logging
import os
import resource
import signal
import sys
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from app.sources.extract import ExtractionError, extract_text

if TYPE_CHECKING:
    from app.core.config import Settings

EXTRACTION_FAILED = 10
OUT_OF_MEMORY = 11
MEMORY_REASON = "extraction exceeded its memory limit (INGEST_EXTRACT_MAX_MEMORY_BYTES)"
CPU_REASON = "extraction exceeded its CPU time limit (INGEST_EXTRACT_MAX_CPU_SECONDS)"
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExtractionLimits:
    max_memory_bytes: int
    max_cpu_seconds: int
    max_extracted_bytes: int

    @classmethod
    def of(cls, settings: "Settings") -> "ExtractionLimits":
        return cls(
            max_memory_bytes=settings.ingest_extract_max_memory_bytes,
            max_cpu_seconds=settings.ingest_extract_max_cpu_seconds,
            max_extracted_bytes=settings.ingest_max_extracted_bytes,
        )


async def extract_isolated(filename: str, data: bytes, limits: ExtractionLimits) -> str:
    """The file's text, extracted in a child process under `limits`; raises ExtractionError
    with the reason when the file cannot be read or the child is stopped by a limit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",  # no PYTHON* variables, no user site, no current directory on the path
        "-m",
        "app.sources.sandbox",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"LC_ALL": "C.UTF-8"},
    )
    header = json.dumps({"filename": filename, **asdict(limits)}).encode() + b"\n"
    try:
        output, errors = await process.communicate(header + data)
    except BaseException:  # cancelled (the job's time budget): the child goes with it
        if process.returncode is None:
            process.kill()
        raise
    code = process.returncode
    if code == 0:
        return output.decode("utf-8")
    if code == EXTRACTION_FAILED:
        raise ExtractionError(output.decode("utf-8", errors="replace"))
    reason = _reason(code)
    logger.warning(
        "extracting %s stopped with exit code %s: %s",
        filename,
        code,
        errors[-2000:].decode("utf-8", errors="replace").strip(),
    )
    raise ExtractionError(f"could not read {filename}: {reason}")


def _reason(code: int | None) -> str:
    if code == OUT_OF_MEMORY:
        return MEMORY_REASON
    if code == -signal.SIGXCPU:
        return CPU_REASON
    if code == -signal.SIGKILL:
        return f"extraction was killed; {MEMORY_REASON} or its CPU time limit"
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        # Parsers written in C may crash rather than report a failed allocation.
        return f"extraction crashed ({name}); the file is damaged, or {MEMORY_REASON}"
    return f"extraction failed unexpectedly (exit code {code})"


def _apply_limits(limits: ExtractionLimits) -> None:
    cpu = limits.max_cpu_seconds
    # SIGXCPU at the soft limit ends the process; the hard limit (SIGKILL) is a backstop.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.max_memory_bytes, limits.max_memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main() -> int:
    """The child: reads the request from stdin, answers on stdout; returns the exit code."""
    request = json.loads(sys.stdin.buffer.readline())
    filename = request.pop("filename")
    limits = ExtractionLimits(**request)
    _apply_limits(limits)
    try:
        data = sys.stdin.buffer.read()
        text = extract_text(filename, data, limits.max_extracted_bytes)
        answer, code = text.encode("utf-8", errors="replace"), 0
    except ExtractionError as error:
        answer, code = str(error).encode("utf-8", errors="replace"), EXTRACTION_FAILED
    except MemoryError:
        return OUT_OF_MEMORY
    sys.stdout.buffer.write(answer)
    sys.stdout.buffer.flush()
    return code


if __name__ == "__main__":
    # No interpreter teardown: it may need memory the limit no longer grants.
    os._exit(main())
