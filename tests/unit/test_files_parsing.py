"""Unit tests of one file download and of the line parser (requests-mock, no simulator)."""

from __future__ import annotations

import json
import time

import pytest
import requests_mock

from openai_batches.api_client import BatchesApi, InvalidPageError
from openai_batches.files import (
    LINE_FIELDS,
    FileDownloader,
    FileRead,
    FileToFetch,
    parse_line,
)

BASE = "http://api.test/v1"
KEY = "sk-unit-test-key-123456"
FILE = FileToFetch("batch_1", "error", "file-abc")


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> BatchesApi:
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0")
    return BatchesApi(BASE, KEY, provider="openai", headers={"OpenAI-Project": "proj_1"})


def parsed(record: dict) -> dict:
    row = parse_line(json.dumps(record).encode())
    assert row is not None
    return dict(zip(LINE_FIELDS, row, strict=True))


def test_both_usage_namings_and_both_error_shapes() -> None:
    chat = parsed({"id": "r1", "custom_id": "a", "response": {"status_code": 200, "body": {
        "model": "gpt-4o-mini", "choices": [{"message": {"content": "secret answer"}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                  "prompt_tokens_details": {"cached_tokens": 4},
                  "completion_tokens_details": {"reasoning_tokens": 2}}}},
        "error": None})  # fmt: skip
    assert (chat["input_tokens"], chat["cached_tokens"], chat["output_tokens"]) == (10, 4, 5)
    assert (chat["reasoning_tokens"], chat["total_tokens"], chat["model"]) == (2, 15, "gpt-4o-mini")
    assert "secret answer" not in json.dumps(chat)
    responses = parsed({"custom_id": "b", "response": {"status_code": 200, "body": {
        "usage": {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10,
                  "input_tokens_details": {"cached_tokens": 1},
                  "output_tokens_details": {"reasoning_tokens": 0}}}}})  # fmt: skip
    assert (responses["input_tokens"], responses["output_tokens"]) == (7, 3)
    http = parsed({"custom_id": "c", "response": {"status_code": 400, "body": {"error": {
        "code": None, "type": "invalid_request_error", "message": "bad", "param": "x"}}},
        "error": None})  # fmt: skip
    assert (http["status_code"], http["error_code"], http["error_type"]) == (
        400,
        None,
        "invalid_request_error",
    )
    outcome = parsed({"custom_id": "d", "response": None,
                      "error": {"code": "batch_expired", "message": "late"}})  # fmt: skip
    assert (outcome["status_code"], outcome["error_code"], outcome["error_message"]) == (
        None, "batch_expired", "late",
    )  # fmt: skip


@pytest.mark.parametrize(
    "line", [b"not json", b"[1]", b'{"id": "x"}', b'{"custom_id": ""}', b'{"custom_id": 5}']
)
def test_lines_that_are_not_a_request_result(line: bytes) -> None:
    assert parse_line(line) is None


def read(api: BatchesApi) -> tuple[list, FileRead]:
    items = list(FileDownloader(api).read(FILE))
    assert isinstance(items[-1], FileRead)
    return items[:-1], items[-1]


def test_a_download_sends_the_list_s_headers(api: BatchesApi) -> None:
    with requests_mock.Mocker() as m:
        m.get(f"{BASE}/files/file-abc/content", content=b'{"custom_id": "a"}\r\n\r\nnope')
        rows, outcome = read(api)
        headers = m.request_history[0].headers
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["x-portkey-provider"] == "openai" and headers["OpenAI-Project"] == "proj_1"
    assert (len(rows), outcome.state, outcome.lines, outcome.bad_lines) == (1, "loaded", 1, 1)
    assert outcome.bytes == len(b'{"custom_id": "a"}\r\n\r\nnope')


@pytest.mark.parametrize(
    ("metadata_status", "metadata", "state"),
    [
        (404, {"error": {"message": "No such File object"}}, "expired"),
        (200, {"id": "file-abc", "expires_at": int(time.time()) - 60}, "expired"),
        (200, {"id": "file-abc", "expires_at": int(time.time()) + 86_400}, "missing"),
        (200, {"id": "file-abc", "expires_at": None}, "missing"),
    ],
)
def test_a_404_is_expired_or_missing(
    api: BatchesApi, metadata_status: int, metadata: dict, state: str
) -> None:
    with requests_mock.Mocker() as m:
        m.get(f"{BASE}/files/file-abc/content", status_code=404, json={"error": {"message": "x"}})
        m.get(f"{BASE}/files/file-abc", status_code=metadata_status, json=metadata)
        rows, outcome = read(api)
    assert rows == [] and (outcome.state, outcome.lines) == (state, 0)


def test_a_gateway_page_instead_of_the_file_is_an_error(api: BatchesApi) -> None:
    with requests_mock.Mocker() as m:
        m.get(f"{BASE}/files/file-abc/content", json={"html-message": "<html>down</html>"})
        with pytest.raises(InvalidPageError, match="gateway"):
            read(api)
