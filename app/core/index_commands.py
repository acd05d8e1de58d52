"""`botsmith indexes plan|apply`: the catalogue against a database, without a cluster."""

from app.core.config import load_settings
from app.core.db import create_mongo_client
from app.core.indexes import IndexOutcome, IndexState, load_catalogue, reconcile_indexes


async def run_indexes(*, apply: bool, allow_rebuild: bool) -> tuple[str, bool]:
    """The report to print, and whether every index is in place (or, for a plan, could be)."""
    settings = load_settings()
    mongo = create_mongo_client(settings)
    try:
        outcomes = await reconcile_indexes(
            mongo[settings.db_name],
            load_catalogue(),
            allow_rebuild=allow_rebuild,
            dry_run=not apply,
        )
    finally:
        await mongo.close()
    return format_report(outcomes, settings.db_name, apply), not any(
        outcome.state in {IndexState.FAILED, IndexState.MISMATCHED} for outcome in outcomes
    )


def format_report(outcomes: list[IndexOutcome], database: str, applied: bool) -> str:
    width = max(len(f"{o.collection}.{o.name}") for o in outcomes)
    lines = [f"{'applied to' if applied else 'plan for'} database {database}:"]
    for outcome in outcomes:
        label = f"{outcome.collection}.{outcome.name}".ljust(width)
        state = outcome.state.value
        if not applied and outcome.state is IndexState.MISSING:
            state = "create"
        elif not applied and outcome.state is IndexState.REBUILT:
            state = "rebuild"
        elif not applied and outcome.state is IndexState.DROPPED:
            state = "drop"
        detail = f"  {outcome.message}" if outcome.message and outcome.message != "planned" else ""
        lines.append(f"  {label}  {state}{detail}")
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.state.value] = counts.get(outcome.state.value, 0) + 1
    lines.append("  " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    return "\n".join(lines)
