"""HTTP dependencies of the evaluation domain."""

from typing import Annotated

from fastapi import Depends

from app.chat.repository import ConversationRepository
from app.container import ContainerDep
from app.evaluation.repository import EvalCaseRepository, EvalRunRepository
from app.evaluation.service import EvaluationService


async def get_evaluation_service(container: ContainerDep) -> EvaluationService:
    resources = container.resources
    return EvaluationService(
        EvalCaseRepository(resources.db),
        EvalRunRepository(resources.db),
        ConversationRepository(resources.db, resources.reads),
        container.ingest_queue,
        resources.settings,
    )


EvaluationServiceDep = Annotated[EvaluationService, Depends(get_evaluation_service)]
