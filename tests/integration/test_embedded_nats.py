"""The embedded nats-server is configured with the fsync policy it is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from aragora.runtime.natsserver import EmbeddedNats, free_port, port_open


@pytest.mark.parametrize(("sync", "line"), [("always", "sync_interval: always"), ("default", None)])
def test_sync_policy_reaches_the_server_config(tmp_path: Path, sync: str, line: str | None) -> None:
    server = EmbeddedNats(free_port(), tmp_path / "nats", sync=sync)
    server.start()
    try:
        assert port_open("127.0.0.1", server.port)
        config = (tmp_path / "nats" / "nats-server.conf").read_text()
        assert f'store_dir: "{tmp_path / "nats"}"' in config
        if line is None:
            assert "sync_interval" not in config
        else:
            assert line in config
    finally:
        server.stop()
    assert server.process is not None
    assert server.process.poll() is not None
