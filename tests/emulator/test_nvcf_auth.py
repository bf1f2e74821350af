"""NVCF authentication on the emulator: API keys, client-credentials JWTs, expiry and scopes."""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests

from optimization_emulator.testing.cuopt import TINY_LP, NvcfClient

PROBLEM_JSON = "application/problem+json"


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _assert_problem(response: requests.Response, status: int, detail_part: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"]
    assert detail_part in body["detail"], body
    return body


def test_api_key_grants_access(nvcf: NvcfClient) -> None:
    assert nvcf.request("GET", "/v2/nvcf/functions").status_code == 200
    assert nvcf.request("GET", "/v2/nvcf/assets").status_code == 200


def test_missing_and_unknown_credentials_are_401_problems(nvcf: NvcfClient) -> None:
    body = _assert_problem(nvcf.request("GET", "/v2/nvcf/functions", auth=False), 401, "missing credentials")
    assert body["title"] == "Unauthorized"
    stranger = NvcfClient(nvcf.base_url, "not-a-key")
    _assert_problem(stranger.request("GET", "/v2/nvcf/functions"), 401, "neither a known API key")
    _assert_problem(stranger.invoke(TINY_LP, function="x"), 401, "neither a known API key")


@pytest.mark.parametrize("scope", ["invoke_function list_functions", "invoke_function,list_functions"])
def test_client_credentials_token_is_a_jwt_that_works(nvcf: NvcfClient, emulator, scope: str) -> None:
    before = emulator.stats()["nvcf"]["tokens_issued"]
    response = nvcf.get_token("emulator-client", "emulator-secret", scope)
    assert response.status_code == 200, response.text
    grant = response.json()
    assert grant["token_type"] == "bearer" and grant["expires_in"] == 600
    header, _, signature = grant["access_token"].split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "=="))["alg"] == "HS256" and signature
    claims = _claims(grant["access_token"])
    assert claims["sub"] == "emulator-client" and claims["exp"] - claims["iat"] == 600
    assert set(claims["scope"].split()) == {"invoke_function", "list_functions"}

    with_token = NvcfClient(nvcf.base_url, grant["access_token"])
    assert with_token.request("GET", "/v2/nvcf/functions").status_code == 200
    answer = with_token.invoke(TINY_LP)
    assert answer.status_code == 200 and answer.json()["status"] == "fulfilled"
    assert emulator.stats()["nvcf"]["tokens_issued"] == before + 1


def test_wrong_or_unknown_client_secret_is_401(nvcf: NvcfClient) -> None:
    body = _assert_problem(
        nvcf.get_token("emulator-client", "wrong"), 401, "Invalid Client ID or Client Secret"
    )
    assert body["error"] == "invalid_client"
    _assert_problem(nvcf.get_token("nobody", "emulator-secret"), 401, "Invalid Client ID or Client Secret")
    no_basic = requests.post(nvcf.base_url + "/token", data={"grant_type": "client_credentials"}, timeout=10)
    _assert_problem(no_basic, 401, "Basic")


def test_token_request_form_is_checked(nvcf: NvcfClient) -> None:
    basic = base64.b64encode(b"emulator-client:emulator-secret").decode()
    wrong_grant = requests.post(
        nvcf.base_url + "/token",
        data={"grant_type": "password", "scope": "invoke_function"},
        headers={"Authorization": f"Basic {basic}"},
        timeout=10,
    )
    assert _assert_problem(wrong_grant, 400, "client_credentials")["error"] == "unsupported_grant_type"
    assert (
        _assert_problem(nvcf.get_token("emulator-client", "emulator-secret", "root"), 400, "scope")["error"]
        == "invalid_scope"
    )
    assert (
        _assert_problem(nvcf.get_token("emulator-client", "emulator-secret", ""), 400, "scope")["error"]
        == "invalid_scope"
    )


def test_token_without_scope_is_forbidden(nvcf: NvcfClient) -> None:
    token = nvcf.get_token("emulator-client", "emulator-secret", "list_functions").json()["access_token"]
    lister = NvcfClient(nvcf.base_url, token)
    assert lister.request("GET", "/v2/nvcf/functions").status_code == 200
    _assert_problem(lister.request("GET", "/v2/nvcf/assets"), 403, "invoke_function")
    _assert_problem(lister.invoke(TINY_LP, function=nvcf.function_id()), 403, "invoke_function")


def test_altered_token_is_rejected(nvcf: NvcfClient) -> None:
    token = nvcf.get_token("emulator-client", "emulator-secret").json()["access_token"]
    header, _, signature = token.split(".")
    claims = _claims(token) | {"exp": int(time.time()) + 10**6}
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = NvcfClient(nvcf.base_url, f"{header}.{forged_payload}.{signature}")
    _assert_problem(forged.request("GET", "/v2/nvcf/functions"), 401, "signature")


def test_expired_token_is_401_with_a_detail_that_says_so(nvcf_tight: NvcfClient, nvcf_tight_emulator) -> None:
    grant = nvcf_tight.get_token("emulator-client", "emulator-secret").json()
    assert grant["expires_in"] == 2
    client = NvcfClient(nvcf_tight.base_url, grant["access_token"])
    assert client.request("GET", "/v2/nvcf/functions").status_code == 200
    failures = nvcf_tight_emulator.stats()["nvcf"]["auth_failures"]
    time.sleep(_claims(grant["access_token"])["exp"] - time.time() + 0.2)
    body = _assert_problem(client.request("GET", "/v2/nvcf/functions"), 401, "expired")
    assert "request a new one" in body["detail"]
    assert nvcf_tight_emulator.stats()["nvcf"]["auth_failures"] == failures + 1
