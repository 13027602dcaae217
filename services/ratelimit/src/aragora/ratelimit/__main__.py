"""``python -m aragora.ratelimit``: run a ratelimit service (replicas share Redis)."""

from aragora.ratelimit.app import run
from aragora.runtime.process import run_service


def main() -> None:
    run_service("ratelimit", run)


if __name__ == "__main__":
    main()
