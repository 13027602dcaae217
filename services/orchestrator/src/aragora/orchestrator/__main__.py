"""``python -m aragora.orchestrator``: run the orchestrator service."""

from aragora.orchestrator.app import run
from aragora.runtime.process import run_service


def main() -> None:
    run_service("orchestrator", run)


if __name__ == "__main__":
    main()
