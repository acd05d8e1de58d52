"""Errors of the evaluation domain."""

from http import HTTPStatus

from app.core.errors import ConflictError, DomainError, NotFoundError, UnprocessableError


class CaseLimitError(ConflictError):
    title = "Test case limit reached"


class ActiveRunLimitError(ConflictError):
    title = "Too many runs in progress"


class RunNotDoneError(ConflictError):
    title = "Run not done"


class NoCasesError(UnprocessableError):
    title = "No test cases"


class UnusableMessageError(DomainError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    title = "Message cannot become a test case"


class CaseNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No such test case on this chatbot")


class RunNotFoundError(NotFoundError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"No evaluation run {run_id} on this chatbot")


class MessageNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No such message on this chatbot")
