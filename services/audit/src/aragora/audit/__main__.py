"""``python -m aragora.audit``: run an audit service (replicas share the database)."""

from aragora.audit.app import run
from aragora.runtime.process import run_service


def main() -> None:
    run_service("audit", run)


if __name__ == "__main__":
    main()
