from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

try:
    from hypothesis import settings as hypothesis_settings
except ImportError:
    hypothesis_settings = None  # type: ignore[assignment,misc]

import mailwright
import senders
from certs import CertFiles, make_certs
from examples import FULL
from mailwright.conf import SETTING_NAMES, settings
from smtpserver import ServerOptions, SMTPTestServer

# The quick run (CI) draws the same examples every time: a property test cannot pass in
# one run and fail in the next. The full run (MAILWRIGHT_FULL_PROPERTIES=1) draws new ones.
# (Hypothesis is absent from the Django 6 environments of .ci/run, which run no property.)
if hypothesis_settings is not None:
    hypothesis_settings.register_profile("quick", derandomize=True, database=None)
    if not FULL:
        hypothesis_settings.load_profile("quick")


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts from the defaults: no configure(), no EMAIL_* environment."""
    for name in (*SETTING_NAMES, "EMAIL_URL"):
        monkeypatch.delenv(name, raising=False)
    settings._reset()
    mailwright.outbox = []
    yield
    settings._reset()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("certs"))


ServerFactory = Callable[..., SMTPTestServer]


@pytest.fixture
def start_server() -> Iterator[ServerFactory]:
    """Start SMTP servers with given ServerOptions fields; all stop after the test."""
    servers: list[SMTPTestServer] = []

    def start(**options: object) -> SMTPTestServer:
        server = SMTPTestServer(ServerOptions(**options)).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_server(start_server: ServerFactory) -> SMTPTestServer:
    """A plain SMTP server, with the settings pointing at it."""
    server = start_server()
    mailwright.configure(**server.settings)
    return server


@pytest.fixture(params=senders.DRIVERS)
def sender(request: pytest.FixtureRequest) -> Iterator[senders.Sender]:
    """The SMTP behaviour tests run once per driver: sync, then asyncio (senders.py)."""
    with senders.make(request.param) as made:
        yield made
