"""TLS verification is on by default; a CA bundle makes a private certificate trusted; off is explicit.

The emulator serves https with a throw-away self-signed certificate made here (cryptography).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import time

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider.exceptions import CertificateError
from airflow_provider.hooks.nextmv import NextmvHook
from airflow_provider.hooks.nextmv_async import NextmvAsyncHook
from airflow_provider.utils.retry import RetryPolicy

ONCE = RetryPolicy(max_attempts=1, max_elapsed=10, initial_wait=0, max_wait=0)


@pytest.fixture(scope="module")
def https_emulator(tmp_path_factory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from optimization_emulator.testing.emulator import EmulatorProcess

    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emulator.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with EmulatorProcess(api_keys=("k-tls-123",), apps={"echo": "cat"}, tls=(cert_path, key_path)) as emu:
        yield emu, cert_path


def use(monkeypatch, emu, **extra):
    conn = {"conn_type": "nextmv", "host": emu.url, "password": "k-tls-123", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_NEXTMV_TLS", json.dumps(conn))


def test_unknown_certificate_is_refused_by_default_and_not_retried(https_emulator, monkeypatch, caplog):
    emu, _ = https_emulator
    assert emu.url.startswith("https://")
    use(monkeypatch, emu)
    patient = RetryPolicy(max_attempts=6, max_elapsed=60, initial_wait=2, max_wait=2)
    started = time.monotonic()
    with pytest.raises(CertificateError, match="certificate was refused.*ca_bundle") as info:
        NextmvHook("nextmv_tls", retry_policy=patient).list_runs("echo")
    assert isinstance(info.value, AirflowFailException)  # Airflow does not retry it either

    async def via_async():
        async with NextmvAsyncHook("nextmv_tls", retry_policy=patient) as hook:
            await hook.get_run_metadata("echo", "latest-x")

    with pytest.raises(CertificateError, match="certificate was refused"):
        asyncio.run(via_async())
    assert time.monotonic() - started < 2.0, "a refused certificate was retried as if transient"
    assert "retrying" not in caplog.text


def test_ca_bundle_makes_it_trusted_for_api_and_presigned_transfers(https_emulator, monkeypatch, tmp_path):
    emu, cert = https_emulator
    use(monkeypatch, emu, ca_bundle=str(cert))
    hook = NextmvHook("nextmv_tls", retry_policy=ONCE)
    run_id = hook.submit_run("echo", input={"pad": "x" * (6 * 1024 * 1024)})  # upload + download over https
    event = hook.wait_for_run(
        "echo", run_id, deadline=__import__("time").time() + 60, poll_interval=0.1, max_poll_interval=0.5
    )
    assert event.status.value == "succeeded"
    hook.download_output("echo", run_id, str(tmp_path / "out.json"))
    assert json.loads((tmp_path / "out.json").read_text())["pad"].startswith("xxx")

    async def via_async():
        async with NextmvAsyncHook("nextmv_tls", retry_policy=ONCE) as h:
            return await h.get_run_metadata("echo", run_id)

    assert asyncio.run(via_async())["metadata"]["status_v2"] == "succeeded"


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verification_off_only_when_asked(https_emulator, monkeypatch):
    emu, _ = https_emulator
    use(monkeypatch, emu, verify_ssl=False)
    assert NextmvHook("nextmv_tls", retry_policy=ONCE).test_connection()[0]
