"""Errors of the sources domain."""

from http import HTTPStatus

from app.core.errors import ConflictError, DomainError, NotFoundError, UnprocessableError


class SourceLimitError(DomainError):
    status = HTTPStatus.CONFLICT
    title = "Knowledge limit reached"


class UnsupportedFileError(DomainError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    title = "Unsupported file type"


class FileTooLargeError(DomainError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    title = "File too large"


class RefusedUrlError(DomainError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    title = "URL refused"


class ResyncPendingError(ConflictError):
    def __init__(self) -> None:
        super().__init__("This source is already waiting or being processed; resync it afterwards")


class SourceNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No such source on this chatbot")


class NotRefreshableError(UnprocessableError):
    def __init__(self) -> None:
        super().__init__("Only URL sources have a refresh schedule")
