"""The conversation export opens safely in a spreadsheet: what a visitor typed is never a
formula."""

import csv
import io

from tests.conftest import StartApi
from tests.support.api import create_chatbot, sign_up

PAYLOADS = ['=HYPERLINK("https://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)"]


def test_cells_that_would_run_as_formulas_are_exported_as_text(start_api: StartApi) -> None:
    api = start_api({"REDIS_URL": ""})
    api.wait_ready()
    with api.client() as client:
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        for payload in PAYLOADS:
            chat = client.post(
                f"/api/chatbots/{bot}/chat", json={"message": payload}, headers=owner.headers
            )
            assert chat.status_code == 200, chat.text
        exported = client.get(
            f"/api/chatbots/{bot}/conversations/export",
            params={"format": "csv"},
            headers=owner.headers,
        )
        jsonl = client.get(f"/api/chatbots/{bot}/conversations/export", headers=owner.headers)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    questions = sorted(row["content"] for row in rows if row["role"] == "user")
    assert questions == sorted("'" + payload for payload in PAYLOADS)
    # JSON Lines is data, not a spreadsheet: it keeps the text exactly.
    assert all(payload in jsonl.text.replace('\\"', '"') for payload in PAYLOADS)
