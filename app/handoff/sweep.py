"""The unclaimed-handoff sweep: every HANDOFF_SWEEP_SECONDS one API process (whichever takes the
round's lease, `app.core.periodic`) sends the fallback message in handoffs nobody claimed in time.
Each fallback is marked sent by a conditional update before it is sent, so a handoff gets it once
even if two processes sweep at the same moment (which is why it also runs when Redis is down)."""

from app.core.periodic import Periodic
from app.core.resources import Resources
from app.handoff.service import HandoffService


def unclaimed_handoff_sweep(resources: Resources) -> Periodic:
    return Periodic(
        name="handoff-sweep",
        interval=resources.settings.handoff_sweep_seconds,
        job=HandoffService(resources).send_fallbacks,
        redis_optional=True,
    )
