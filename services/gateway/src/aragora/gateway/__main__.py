"""``python -m aragora.gateway``: run the gateway (REST on the API port, WS on both)."""

from aragora.gateway.server import run
from aragora.runtime.process import run_service


def main() -> None:
    run_service("gateway", run)


if __name__ == "__main__":
    main()
