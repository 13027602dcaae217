"""``python -m aragora.agent_runner``: run an agent-runner (run several to share the work)."""

from aragora.agent_runner.app import run
from aragora.runtime.process import run_service


def main() -> None:
    run_service("agent-runner", run)


if __name__ == "__main__":
    main()
