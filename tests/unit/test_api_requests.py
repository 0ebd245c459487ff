"""Unit tests of single requests: their shape, headers and the paging guards (requests-mock)."""

from __future__ import annotations

import pytest
import requests_mock

from openai_batches.api_client import (
    ApiRefusedError,
    BatchesApi,
    BatchesApiError,
    InvalidPageError,
)

BASE = "http://api.test/v1"
KEY = "sk-unit-test-key-123456"


def batch(n: int) -> dict:
    return {"id": f"batch_{n:03d}", "object": "batch", "created_at": 1_700_000_000 - n}


def page(ids: range, has_more: bool) -> dict:
    data = [batch(n) for n in ids]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> BatchesApi:
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0")
    return BatchesApi(BASE, KEY, provider="openai", headers={"x-portkey-config": "cfg"})


def test_pages_follow_the_cursor_with_limit_100_and_send_the_headers(api: BatchesApi) -> None:
    with requests_mock.Mocker() as m:
        m.get(f"{BASE}/batches?limit=100", json=page(range(0, 100), True), complete_qs=True)
        m.get(
            f"{BASE}/batches?limit=100&after=batch_099",
            json=page(range(100, 130), False),
            complete_qs=True,
        )
        pages = list(api.pages())
        assert [len(p) for p in pages] == [100, 30]
        assert m.call_count == 2  # one request per page, never more
        for request in m.request_history:
            assert request.headers["Authorization"] == f"Bearer {KEY}"
            assert request.headers["x-portkey-provider"] == "openai"
            assert request.headers["x-portkey-config"] == "cfg"
    assert api.list_requests == 2


def test_cursor_is_last_id_when_given_else_the_last_object(api: BatchesApi) -> None:
    first = page(range(0, 2), True)
    first["last_id"] = "token-2"  # a gateway's page token
    second = page(range(2, 4), True)
    del second["last_id"]  # the SDK's rule: data[-1].id
    with requests_mock.Mocker() as m:
        m.get(f"{BASE}/batches?limit=100", json=first, complete_qs=True)
        m.get(f"{BASE}/batches?limit=100&after=token-2", json=second, complete_qs=True)
        m.get(f"{BASE}/batches?limit=100&after=batch_003", json=page(range(4, 5), False))
        assert sum(len(p) for p in api.pages()) == 5


def test_no_provider_header_when_none_is_configured() -> None:
    api = BatchesApi(BASE, KEY)
    with requests_mock.Mocker() as m:
        m.get(f"{BASE}/batches", json=page(range(0, 1), False))
        list(api.pages())
        assert "x-portkey-provider" not in m.request_history[0].headers


def test_a_page_without_has_more_is_the_last(api: BatchesApi) -> None:
    body = page(range(0, 3), False)
    del body["has_more"]
    with requests_mock.Mocker() as m:
        m.get(f"{BASE}/batches", json=body)
        assert sum(len(p) for p in api.pages()) == 3
        assert m.call_count == 1


@pytest.mark.parametrize(
    ("second", "message"),
    [
        (page(range(0, 100), True), "repeated batch batch_000"),  # cursor does not advance
        (page(range(100, 100), True), "has_more with an empty page"),
    ],
)
def test_guards_stop_a_run_that_would_loop(api: BatchesApi, second: dict, message: str) -> None:
    with requests_mock.Mocker() as m:
        m.get(f"{BASE}/batches?limit=100", json=page(range(0, 100), True), complete_qs=True)
        m.get(f"{BASE}/batches?limit=100&after=batch_099", json=second, complete_qs=True)
        with pytest.raises(InvalidPageError, match=message):
            list(api.pages())
        assert m.call_count == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"html-message": "<html>bad gateway</html>"}, "gateway could not use"),
        ({"object": "batch", "id": "batch_1"}, "not a list page"),
        ([1, 2], "not a list page"),
        ({"object": "list", "data": [{"id": 3}]}, "without a string id"),
    ],
)
def test_a_200_that_is_not_a_list_page_is_refused(api: BatchesApi, body: object, message: str):
    with requests_mock.Mocker() as m:
        m.get(f"{BASE}/batches", json=body)
        with pytest.raises(InvalidPageError, match=message):
            list(api.pages())


def test_a_body_that_is_not_json_is_refused(api: BatchesApi) -> None:
    with requests_mock.Mocker() as m:
        m.get(f"{BASE}/batches", text='{"object": "list", "data": [')
        with pytest.raises(InvalidPageError, match="not JSON"):
            list(api.pages())


@pytest.mark.parametrize("status", [401, 403, 404])
def test_refusals_carry_the_api_message_and_status(api: BatchesApi, status: int) -> None:
    error = {"error": {"message": "Incorrect API key provided.", "code": "invalid_api_key"}}
    with requests_mock.Mocker() as m:
        m.get(f"{BASE}/batches", json=error, status_code=status)
        with pytest.raises(ApiRefusedError, match="Incorrect API key provided") as refused:
            list(api.pages())
        assert refused.value.status == status
        assert m.call_count == 1  # never retried


def test_server_errors_are_retried_then_reported(api: BatchesApi) -> None:
    with requests_mock.Mocker() as m:
        m.get(f"{BASE}/batches", json={"error": {"message": "overloaded"}}, status_code=503)
        with pytest.raises(BatchesApiError, match="HTTP 503 after retries: overloaded"):
            list(api.pages())
        assert m.call_count == 2  # RUNTIME__REQUEST_MAX_ATTEMPTS


def test_429_then_success(api: BatchesApi) -> None:
    with requests_mock.Mocker() as m:
        m.get(
            f"{BASE}/batches",
            [
                {"status_code": 429, "headers": {"Retry-After": "0"}, "json": {}},
                {"json": page(range(0, 1), False)},
            ],
        )
        assert sum(len(p) for p in api.pages()) == 1
        assert m.call_count == 2


def test_retrieve_returns_the_batch_or_none_when_gone(api: BatchesApi) -> None:
    with requests_mock.Mocker() as m:
        m.get(f"{BASE}/batches/batch_001", json=batch(1))
        m.get(f"{BASE}/batches/batch_002", status_code=404, json={"error": {"message": "nope"}})
        assert api.retrieve("batch_001") == batch(1)
        assert api.retrieve("batch_002") is None
    assert api.retrieve_requests == 2
