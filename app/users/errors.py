"""Errors of the users domain."""

from http import HTTPStatus

from app.core.errors import ConflictError, DomainError


class AuthenticationError(DomainError):
    status = HTTPStatus.UNAUTHORIZED
    title = "Unauthorized"

    def __init__(self, detail: str = "Authentication required") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class ForbiddenError(DomainError):
    status = HTTPStatus.FORBIDDEN
    title = "Forbidden"


class EmailTakenError(ConflictError):
    def __init__(self) -> None:
        super().__init__("An account with this email already exists")


class TooManyAttemptsError(DomainError):
    status = HTTPStatus.TOO_MANY_REQUESTS
    title = "Too many failed attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many failed password attempts; try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
