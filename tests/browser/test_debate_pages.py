"""The debate pages in a real browser: log in, start a debate, watch it live to consensus
(through a dropped WebSocket), download and verify its receipt; history, replay, ratings."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, WebSocketRoute, expect

from tests.browser.conftest import log_in
from tests.e2e.stack import Stack

DROP_AFTER = 5  # debate events let through before the first connection is cut
# demo-stubborn and demo-agreeable vote for demo-stubborn, demo-contrarian dissents.
TRIO = ("demo-stubborn", "demo-agreeable", "demo-contrarian")


def test_log_in_start_a_debate_and_watch_it_reach_consensus(
    page: Page, stack: Stack, users: dict[str, str], artifacts: Path
) -> None:
    connections: list[str] = []

    def cut_the_first_connection(ws: WebSocketRoute) -> None:
        connections.append(ws.url)
        server = ws.connect_to_server()
        if len(connections) > 1:
            return  # later connections pass through untouched
        forwarded = 0

        def relay(message: str | bytes) -> None:
            nonlocal forwarded
            if forwarded >= DROP_AFTER:
                return
            ws.send(message)
            if "seq" in json.loads(message):
                forwarded += 1
                if forwarded == DROP_AFTER:  # as if the network dropped: the page must resume
                    ws.close(code=1001, reason="dropped by the test")
                    server.close()

        server.on_message(relay)

    page.route_web_socket(re.compile(r"/ws/debates/"), cut_the_first_connection)
    log_in(page, stack, users["owner"])
    expect(page.get_by_role("heading", name="Start a debate")).to_be_visible()
    page.get_by_label("Topic").fill("Should we adopt a four-day work week?")
    for box in page.get_by_role("checkbox").all():
        box.uncheck()
    for name in TRIO:
        page.get_by_role("checkbox", name=re.compile(rf"^{name}\b")).check()
    page.get_by_label("Protocol preset").select_option("light")
    page.get_by_role("button", name="Start debate").click()

    page.wait_for_url(re.compile(r"/ui/debates/[0-9a-f-]{36}$"))
    debate_id = page.url.rsplit("/", 1)[1]
    view = stack.wait_finished(debate_id)
    assert view["status"] == "consensus", view
    expect(page.locator("[data-status]")).to_have_attribute("data-status", "consensus")

    # Every stored event shown exactly once, in order, although the stream was cut.
    shown = page.locator("ol.timeline li").evaluate_all("items => items.map(i => +i.dataset.seq)")
    assert shown == list(range(1, view["last_seq"] + 1))
    assert len(connections) == 2, connections
    assert connections[0].endswith("?since=0") or "since=0&" in connections[0]
    assert f"since={DROP_AFTER}" in connections[1], connections[1]

    # Rounds, phases, each agent's turn, votes and convergence are drawn.
    assert page.locator("section.round").count() == view["rounds"]
    completed = [t for t in view["turns"] if t["status"] == "completed"]
    expect(page.locator("article.turn .badge.completed")).to_have_count(len(completed))
    expect(page.locator("p.vote")).to_have_count(len(view["votes"]))
    expect(page.locator("[data-convergence]")).to_have_count(len(view["convergence"]))
    outcome = page.get_by_role("region", name="Outcome")
    expect(outcome).to_contain_text(view["consensus"]["winner"])
    for dissenter in view["consensus"]["dissenters"]:
        expect(outcome).to_contain_text(dissenter)

    # The receipt: verdict shown, downloaded as served, verified offline by the CLI.
    verdict = page.locator("[data-verdict]")
    expect(verdict).to_be_visible()
    with page.expect_download() as downloading:
        page.get_by_role("button", name="Download receipt (JSON)").click()
    saved = artifacts / downloading.value.suggested_filename
    downloading.value.save_as(saved)
    assert saved.name == f"receipt-{debate_id}.json"
    public_key = stack.http.get(f"{stack.url}/api/receipts/public-key").json()["public_key"]
    checked = subprocess.run(
        [sys.executable, "-m", "aragora.cli", "receipt", "verify", str(saved),
         "--public-key", public_key],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    receipt: dict[str, Any] = json.loads(saved.read_bytes())["receipt"]
    assert verdict.get_attribute("data-verdict") == receipt["verdict"]
    assert receipt["debate_id"] == debate_id
    page.screenshot(path=artifacts / "debate-live.png", full_page=True)


def test_history_filters_and_replays_a_finished_debate(
    page: Page,
    stack: Stack,
    users: dict[str, str],
    finished_debate: dict[str, Any],
    artifacts: Path,
) -> None:
    log_in(page, stack, users["owner"], "/ui/history")
    debates = page.get_by_role("region", name="Debates")
    row = debates.get_by_role("row").filter(has_text=finished_debate["topic"])
    expect(row).to_have_count(1)

    page.get_by_label("Search topic").fill("no such words anywhere")
    expect(debates).to_contain_text("No debate matches these filters.")
    page.get_by_label("Search topic").fill("trunk-based")
    page.get_by_label("Domain", exact=True).fill("engineering")
    page.get_by_label("Agent", exact=True).select_option("demo-agreeable")
    expect(debates.get_by_role("row")).to_have_count(2)  # the header and our debate
    page.get_by_label("Status").select_option("no_consensus")  # asks the API
    expect(debates).to_contain_text("No debate")
    page.get_by_label("Status").select_option("consensus")
    expect(row).to_have_count(1)

    row.get_by_role("button", name=re.compile("^Replay")).click()
    replay = page.get_by_role("region", name="Replay")
    replay.get_by_label("Speed").select_option("20")
    replay.get_by_role("button", name="Play").click()
    expect(replay.locator("[data-connection]")).to_have_attribute(
        "data-connection", "replayed", timeout=60_000
    )
    expect(replay.locator("[data-status]")).to_have_attribute("data-status", "consensus")
    shown = replay.locator("ol.timeline li").evaluate_all("items => items.map(i => +i.dataset.seq)")
    assert shown == list(range(1, finished_debate["last_seq"] + 1))
    expect(replay.locator("[data-verdict]")).to_be_visible()
    page.screenshot(path=artifacts / "history-replay.png", full_page=True)


def test_leaderboard_shows_ratings_and_their_history(
    page: Page,
    stack: Stack,
    users: dict[str, str],
    finished_debate: dict[str, Any],
    artifacts: Path,
) -> None:
    log_in(page, stack, users["owner"], "/ui/leaderboard")
    ratings = page.get_by_role("region", name="Ratings")
    for name in TRIO:
        expect(ratings.get_by_role("cell", name=name, exact=True)).to_be_visible()
    board = stack.http.get(f"{stack.url}/api/agents/leaderboard", params={"domain": "all"}).json()
    first = board["agents"][0]
    expect(ratings.get_by_role("row").nth(1)).to_contain_text(first["agent"])

    page.get_by_label("Domain", exact=True).select_option("engineering")
    page.get_by_label("Agent", exact=True).select_option("demo-contrarian")
    chart = page.get_by_role("img", name=re.compile("Rating over time, engineering"))
    expect(chart).to_be_visible()
    history = stack.http.get(f"{stack.url}/api/agents/demo-contrarian").json()["history"]
    points = [h for h in history if h["domain"] == "engineering"]
    expect(chart.locator("circle")).to_have_count(len(points) + 1)  # the start, then each debate
    page.get_by_label("Agent", exact=True).select_option("")
    page.screenshot(path=artifacts / "leaderboard.png", full_page=True)
