"""Lead capture through the running API: the lead form's settings, a visitor's submit, the owner's
listing, export and deletion, and the analytics count (the widget's form is in
test_leads_browser.py)."""

import csv
import io
import json
import uuid
from typing import Any

import httpx

from tests.conftest import StartApi
from tests.support.api import (
    Account,
    assert_problem,
    create_api_key,
    create_chatbot,
    sign_up,
)
from tests.support.processes import ApiServer

ORIGIN = "https://shop.example"
CONSENT = "I agree that Kettle Ltd may contact me about my question."
FORM: dict[str, Any] = {
    "enabled": True,
    "trigger": "after_messages",
    "after_messages": 2,
    "fields": {"name": "required", "email": "required", "phone": "optional", "message": "optional"},
    "consent_text": CONSENT,
    "title": "Can we get back to you?",
    "submit_label": "Send my details",
}
FORMULA = '=HYPERLINK("https://evil.example","click me")'


def _session() -> str:
    return uuid.uuid4().hex


def _lead_bot(client: httpx.Client, owner: Account, **form: Any) -> dict[str, Any]:
    return create_chatbot(
        client,
        owner,
        visibility="public",
        allowed_origins=[ORIGIN],
        lead_form={**FORM, **form},
    )


def _submit(client: httpx.Client, bot: str, **body: Any) -> httpx.Response:
    return client.post(f"/api/public/chatbots/{bot}/leads", json=body)


def _valid(**fields: Any) -> dict[str, Any]:
    return {
        "session_id": _session(),
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "consent": True,
        **fields,
    }


def _fields_named(response: httpx.Response) -> set[str]:
    return {error["field"] for error in response.json().get("errors", [])}


def _leads(client: httpx.Client, owner: Account, bot: str, **params: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/chatbots/{bot}/leads", params=params, headers=owner.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_lead_form_settings_are_validated_naming_the_field(client: httpx.Client) -> None:
    owner = sign_up(client)
    for bad, field in (
        ({"trigger": "sometimes"}, "lead_form.trigger"),
        ({"after_messages": 0}, "lead_form.after_messages"),
        ({"fields": {"email": "mandatory"}}, "lead_form.fields.email"),
        ({"fields": {"fax": "optional"}}, "lead_form.fields.fax"),
        (
            {"fields": dict.fromkeys(("name", "email", "phone", "company", "message"), "off")},
            "lead_form.fields",
        ),
        ({"consent_text": "x" * 1001}, "lead_form.consent_text"),
        ({"title": ""}, "lead_form.title"),
        ({"submit_label": "x" * 41}, "lead_form.submit_label"),
    ):
        response = client.post(
            "/api/chatbots", json={"name": "Bad", "lead_form": bad}, headers=owner.headers
        )
        assert_problem(response, 422)
        assert field in _fields_named(response), (bad, response.text)

    plain = create_chatbot(client, owner, visibility="public")
    assert plain["lead_form"]["enabled"] is False
    public = client.get(f"/api/public/chatbots/{plain['id']}").json()
    assert public["lead_form"] is None  # off: the widget shows nothing

    # A change to one field keeps the others; the form may not end up asking for nothing.
    url = f"/api/chatbots/{plain['id']}"
    changed = client.patch(
        url,
        json={"lead_form": {"enabled": True, "fields": {"phone": "required"}}},
        headers=owner.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["lead_form"]["fields"] == {
        "name": "optional",
        "email": "required",
        "phone": "required",
        "company": "off",
        "message": "off",
    }
    emptied = client.patch(
        url,
        json={"lead_form": {"fields": {"name": "off", "email": "off", "phone": "off"}}},
        headers=owner.headers,
    )
    assert "lead_form.fields" in assert_problem(emptied, 422)["detail"]

    bot = _lead_bot(client, owner)
    public = client.get(f"/api/public/chatbots/{bot['id']}").json()
    assert public["lead_form"] == {
        "trigger": "after_messages",
        "after_messages": 2,
        "fields": {**FORM["fields"], "company": "off"},
        "consent_text": CONSENT,
        "title": "Can we get back to you?",
        "submit_label": "Send my details",
    }


def test_a_submit_must_fit_the_form(client: httpx.Client) -> None:
    owner = sign_up(client)
    bot = _lead_bot(client, owner)["id"]

    missing = _submit(client, bot, session_id=_session(), phone="+44 20 7946 0958", consent=True)
    assert assert_problem(missing, 422)["detail"].startswith("Invalid request: email, name (")

    bad_email = _submit(client, bot, **_valid(email="ada@@example"))
    assert "email" in _fields_named(bad_email)
    assert bad_email.status_code == 422
    bad_phone = _submit(client, bot, **_valid(phone="call me maybe"))
    assert "phone" in _fields_named(bad_phone)
    assert bad_phone.status_code == 422
    too_long = _submit(client, bot, **_valid(name="x" * 101))
    assert "name" in _fields_named(too_long)
    assert too_long.status_code == 422

    unasked = _submit(client, bot, **_valid(company="Kettle Ltd"))
    assert "company" in assert_problem(unasked, 422)["detail"]
    no_consent = _submit(client, bot, **_valid(consent=False))
    assert "consent" in assert_problem(no_consent, 422)["detail"]

    off = create_chatbot(client, owner, visibility="public")["id"]
    assert_problem(_submit(client, off, **_valid()), 409)
    assert _leads(client, owner, bot) == []


def test_a_lead_is_stored_with_its_session_conversation_and_consent(client: httpx.Client) -> None:
    owner = sign_up(client)
    bot = _lead_bot(client, owner)["id"]
    session = _session()
    chat = client.post(
        f"/api/public/chatbots/{bot}/chat",
        json={"message": "Do you ship to Norway?", "session_id": session},
    )
    assert chat.status_code == 200, chat.text
    conversation = chat.json()["conversation_id"]

    # Another visitor cannot hang a lead on this visitor's conversation.
    other = _submit(client, bot, **_valid(conversation_id=conversation))
    assert_problem(other, 404)

    created = _submit(
        client,
        bot,
        **_valid(
            session_id=session,
            conversation_id=conversation,
            phone="  ",  # blank: not given
            message="Please call after 5pm",
        ),
    )
    assert created.status_code == 201, created.text
    lead = created.json()
    assert lead["session_id"] == session
    assert lead["conversation_id"] == conversation
    assert (lead["name"], lead["email"], lead["phone"]) == ("Ada Lovelace", "ada@example.com", None)
    assert lead["consent"]["text"] == CONSENT
    assert lead["consent"]["at"] == lead["created_at"]
    assert lead["origin"] == "widget"

    # One lead per session: a second submit updates it.
    again = _submit(client, bot, **_valid(session_id=session, name="Ada King"))
    assert again.status_code == 200, again.text
    assert again.json()["id"] == lead["id"]
    assert again.json()["conversation_id"] == conversation  # kept
    stored = _leads(client, owner, bot)
    assert [(item["id"], item["name"]) for item in stored] == [(lead["id"], "Ada King")]

    # The owner's side: the owner or the bot's API key, for a visitor of their own.
    key = create_api_key(client, owner, bot)["key"]
    by_key = client.post(f"/api/chatbots/{bot}/leads", json=_valid(), headers={"X-API-Key": key})
    assert by_key.status_code == 201, by_key.text
    assert by_key.json()["origin"] == "api"


def test_refusals_reach_the_widget_on_an_allowed_origin_only(client: httpx.Client) -> None:
    owner = sign_up(client)
    bot = _lead_bot(client, owner)["id"]
    url = f"/api/public/chatbots/{bot}/leads"
    preflight = client.options(
        url, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN

    refused = client.post(url, json=_valid(email="nobody"), headers={"Origin": ORIGIN})
    assert_problem(refused, 422)
    assert refused.headers["access-control-allow-origin"] == ORIGIN
    stranger = client.post(
        url, json=_valid(email="nobody"), headers={"Origin": "https://evil.example"}
    )
    assert_problem(stranger, 403)
    assert "access-control-allow-origin" not in stranger.headers


def test_the_owner_lists_by_date_pages_exports_and_deletes(client: httpx.Client) -> None:
    owner = sign_up(client)
    bot = _lead_bot(client, owner)["id"]
    names = [FORMULA, "Grace Hopper", "Katherine Johnson", "Mary Jackson"]
    created = []
    for name in names:
        response = _submit(client, bot, **_valid(name=name))
        assert response.status_code == 201, response.text
        created.append(response.json())

    newest_first = [lead["id"] for lead in reversed(created)]
    pages: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        body = client.get(f"/api/chatbots/{bot}/leads", params=params, headers=owner.headers)
        pages.extend(lead["id"] for lead in body.json()["items"])
        cursor = body.json()["next_cursor"]
        if cursor is None:
            break
    assert pages == newest_first

    since, until = created[1]["created_at"], created[3]["created_at"]
    window = _leads(client, owner, bot, since=since, until=until)
    expected = [lead["id"] for lead in reversed(created) if since <= lead["created_at"] < until]
    assert [lead["id"] for lead in window] == expected
    assert created[1]["id"] in expected
    assert created[3]["id"] not in expected
    naive = client.get(
        f"/api/chatbots/{bot}/leads", params={"since": "2026-01-01T00:00:00"}, headers=owner.headers
    )
    assert "since" in _fields_named(naive)
    assert naive.status_code == 422

    url = f"/api/chatbots/{bot}/leads/export"
    exported = client.get(url, params={"format": "csv"}, headers=owner.headers)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(row["name"] for row in rows) == sorted(["'" + FORMULA, *names[1:]])
    assert {row["consent_text"] for row in rows} == {CONSENT}
    lines = client.get(url, params={"since": since, "until": until}, headers=owner.headers)
    parsed = [json.loads(line) for line in lines.text.splitlines()]
    assert [row["id"] for row in parsed] == list(reversed(expected))  # oldest first
    everything = client.get(url, headers=owner.headers).text.splitlines()
    assert json.loads(everything[0])["name"] == FORMULA  # data, not a spreadsheet: exact

    deleted = client.delete(f"/api/chatbots/{bot}/leads/{created[0]['id']}", headers=owner.headers)
    assert deleted.status_code == 204
    assert created[0]["id"] not in [lead["id"] for lead in _leads(client, owner, bot)]
    assert_problem(
        client.delete(f"/api/chatbots/{bot}/leads/{created[0]['id']}", headers=owner.headers),
        404,
    )


def test_analytics_count_the_leads_of_the_range(client: httpx.Client) -> None:
    owner = sign_up(client)
    bot = _lead_bot(client, owner)["id"]
    for _ in range(3):
        assert _submit(client, bot, **_valid()).status_code == 201
    other = _lead_bot(client, owner)["id"]
    assert _submit(client, other, **_valid()).status_code == 201

    totals = client.get(f"/api/chatbots/{bot}/analytics", headers=owner.headers).json()["totals"]
    assert totals["leads"] == 3
    past = client.get(
        f"/api/chatbots/{bot}/analytics",
        params={"from": "2025-01-01T00:00:00Z", "to": "2025-01-02T00:00:00Z"},
        headers=owner.headers,
    )
    assert past.json()["totals"]["leads"] == 0


def test_other_owners_cannot_see_export_delete_or_submit(client: httpx.Client) -> None:
    owner, stranger = sign_up(client), sign_up(client)
    bot = _lead_bot(client, owner)["id"]
    lead = _submit(client, bot, **_valid()).json()
    for method, path in (
        ("GET", f"/api/chatbots/{bot}/leads"),
        ("GET", f"/api/chatbots/{bot}/leads/export"),
        ("DELETE", f"/api/chatbots/{bot}/leads/{lead['id']}"),
    ):
        assert_problem(client.request(method, path, headers=stranger.headers), 404)
    foreign = client.post(f"/api/chatbots/{bot}/leads", json=_valid(), headers=stranger.headers)
    assert_problem(foreign, 404)
    private = create_chatbot(client, owner, lead_form=FORM)["id"]  # not public: no visitors
    assert_problem(_submit(client, private, **_valid()), 404)
    assert [item["id"] for item in _leads(client, owner, bot)] == [lead["id"]]


def test_the_public_submit_has_the_widget_rate_limit(start_api: StartApi) -> None:
    api: ApiServer = start_api(
        {"RATE_LIMIT_PUBLIC_PER_MINUTE": "2", "RATE_LIMIT_PUBLIC_PER_HOUR": "100"},
        private_redis=True,
    )
    api.wait_ready()
    with api.client() as client:
        owner = sign_up(client)
        bot = _lead_bot(client, owner)["id"]
        statuses = [_submit(client, bot, **_valid()).status_code for _ in range(3)]
        assert statuses == [201, 201, 429]
        # The owner's listing is not under the visitors' limit.
        assert len(_leads(client, owner, bot)) == 2


def test_a_new_lead_is_announced_to_the_bots_webhooks_once(start_api: StartApi) -> None:
    # Recorded for delivery (the worker sends it; not started here): the delivery log shows it.
    api = start_api({"INGEST_URL_ALLOWLIST": "127.0.0.1"})
    api.wait_ready()
    with api.client() as client:
        owner = sign_up(client)
        bot = _lead_bot(client, owner)["id"]
        hook = client.post(
            f"/api/chatbots/{bot}/webhooks",
            json={"url": "http://127.0.0.1:9/hooks", "events": ["lead.created"]},
            headers=owner.headers,
        )
        assert hook.status_code == 201, hook.text
        session = _session()
        first = _submit(client, bot, **_valid(session_id=session))
        assert first.status_code == 201, first.text
        assert _submit(client, bot, **_valid(session_id=session)).status_code == 200
        log = client.get(
            f"/api/chatbots/{bot}/webhooks/{hook.json()['id']}/deliveries", headers=owner.headers
        )
        assert log.status_code == 200, log.text
        assert [d["event_type"] for d in log.json()["items"]] == ["lead.created"]
