"""A chatbot's knowledge sources, managed by its owner."""

from typing import Annotated

from fastapi import APIRouter, Path, UploadFile, status

from app.chatbots.dependencies import OwnedChatbot
from app.container import ContainerDep
from app.core.body_limit import UPLOAD_BODY
from app.core.errors import problem_responses
from app.sources.dependencies import SourceServiceDep
from app.sources.errors import FileTooLargeError
from app.sources.schemas import (
    QASourceCreate,
    SourceOut,
    SourceSettings,
    SourceUpdate,
    TextSourceCreate,
    UrlSourceCreate,
)

router = APIRouter(
    prefix="/chatbots/{chatbot_id}/sources",
    tags=["knowledge"],
    responses=problem_responses(404),
)
SourceId = Annotated[str, Path(max_length=64)]
ACCEPTED = status.HTTP_202_ACCEPTED


@router.post(
    "/text",
    status_code=ACCEPTED,
    responses=problem_responses(409, 413, 422),
    openapi_extra=UPLOAD_BODY,
)
async def add_text(
    body: TextSourceCreate, chatbot: OwnedChatbot, service: SourceServiceDep
) -> SourceOut:
    """Adds plain text; it is chunked in the background (`status` goes pending → ready)."""
    return await service.add_text(chatbot, body)


@router.post(
    "/qa",
    status_code=ACCEPTED,
    responses=problem_responses(409, 413, 422),
    openapi_extra=UPLOAD_BODY,
)
async def add_questions_and_answers(
    body: QASourceCreate, chatbot: OwnedChatbot, service: SourceServiceDep
) -> SourceOut:
    return await service.add_qa(chatbot, body)


@router.post(
    "/file",
    status_code=ACCEPTED,
    responses=problem_responses(409, 413, 415),
    openapi_extra=UPLOAD_BODY,
)
async def add_file(
    file: UploadFile, chatbot: OwnedChatbot, service: SourceServiceDep, container: ContainerDep
) -> SourceOut:
    """Uploads a .txt, .md, .html, .csv, .pdf or .docx file (multipart field `file`)."""
    # The request body was bounded as it arrived (app.core.body_limit); the file, spooled to
    # disk past a megabyte, is refused by its size before any of it is read into memory.
    limit = container.settings.ingest_max_file_bytes
    if file.size is not None and file.size > limit:
        raise FileTooLargeError(f"{file.filename} is larger than {limit} bytes")
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise FileTooLargeError(f"{file.filename} is larger than {limit} bytes")
    return await service.add_file(chatbot, file.filename or "upload", data)


@router.post("/url", status_code=ACCEPTED, responses=problem_responses(409, 422))
async def add_url(
    body: UrlSourceCreate, chatbot: OwnedChatbot, service: SourceServiceDep
) -> SourceOut:
    """A web page, the pages of a sitemap (`mode: sitemap`), or a same-site crawl
    (`mode: crawl`, with `max_depth`, `max_pages`, `include` and `exclude` path patterns).
    Private, loopback, link-local and metadata addresses are refused, also after redirects.
    `refresh_schedule` (off, hourly, daily, weekly) fetches the pages again on its own."""
    return await service.add_url(chatbot, body)


@router.get("")
async def list_sources(chatbot: OwnedChatbot, service: SourceServiceDep) -> list[SourceOut]:
    return await service.list_sources(chatbot)


@router.get("/{source_id}")
async def get_source(
    source_id: SourceId, chatbot: OwnedChatbot, service: SourceServiceDep
) -> SourceOut:
    return await service.get(chatbot, source_id)


@router.patch("/{source_id}", responses=problem_responses(422))
async def update_source(
    source_id: SourceId, body: SourceUpdate, chatbot: OwnedChatbot, service: SourceServiceDep
) -> SourceOut:
    """Changes a URL source's `refresh_schedule` (null: the chatbot's default); the next
    refresh is scheduled one period (give or take a tenth) from now."""
    return await service.update(chatbot, source_id, body)


@router.post(
    "/{source_id}/resync",
    status_code=ACCEPTED,
    responses=problem_responses(status.HTTP_404_NOT_FOUND, status.HTTP_409_CONFLICT),
)
async def resync_source(
    source_id: SourceId, chatbot: OwnedChatbot, service: SourceServiceDep
) -> SourceOut:
    """Processes the source again; content that did not change is left as it is. A source that
    is already waiting or being processed answers 409."""
    return await service.resync(chatbot, source_id)


@router.delete("/{source_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_source(
    source_id: SourceId, chatbot: OwnedChatbot, service: SourceServiceDep
) -> None:
    """Deletes the source and its chunks."""
    await service.delete(chatbot, source_id)


# Beside the sources rather than under them: `/sources/{source_id}` takes every name there.
defaults_router = APIRouter(
    prefix="/chatbots/{chatbot_id}/source-defaults",
    tags=["knowledge"],
    responses=problem_responses(404),
)


@defaults_router.get("")
async def get_source_defaults(chatbot: OwnedChatbot, service: SourceServiceDep) -> SourceSettings:
    """The chatbot's defaults for its sources: the refresh schedule of URL sources that have
    none of their own."""
    return await service.settings(chatbot)


@defaults_router.put("", responses=problem_responses(422))
async def save_source_defaults(
    body: SourceSettings, chatbot: OwnedChatbot, service: SourceServiceDep
) -> SourceSettings:
    """Sets the chatbot's defaults; URL sources that follow the default schedule are
    scheduled anew."""
    return await service.save_settings(chatbot, body)
