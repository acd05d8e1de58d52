"""Errors of the governance domain."""

from app.core.errors import NotFoundError


class ErasureNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No such erasure")
