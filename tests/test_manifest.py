"""manifest.yml is a valid Slack app manifest and declares exactly what the listeners handle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from bot import slack_surface

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = Path(__file__).resolve().parents[2] / "shared/slack/manifest.schema.1.0.0.json"


@pytest.fixture(scope="module")
def manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from bot.app import create_app
    from roster.store import Store
    from tests.conftest_slack import bot_settings
    from tests.slack_standin import SlackStandIn

    with SlackStandIn() as slack:
        store = Store(f"sqlite:///{tmp_path_factory.mktemp('manifest')}/r.sqlite3")
        built = create_app(bot_settings(slack), store)
        yield built
        built.rosterbot.shutdown()
        store.dispose()


def test_manifest_validates_against_slack_schema(manifest):
    jsonschema = pytest.importorskip("jsonschema")
    if not SCHEMA.is_file():
        pytest.skip(
            f"Slack manifest schema not found at {SCHEMA} (CI clones shared/ next to the repo)"
        )
    jsonschema.validate(manifest, json.loads(SCHEMA.read_text()))


def test_socket_mode_on_and_interactivity_enabled(manifest):
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is bool(slack_surface.ACTION_IDS)


def test_scopes_are_exactly_what_the_code_needs(manifest):
    declared = manifest["oauth_config"]["scopes"]["bot"]
    assert len(declared) == len(set(declared)), "a scope is listed twice"
    assert set(declared) == slack_surface.bot_scopes()


def test_every_subscribed_event_has_its_scope(manifest):
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert set(events) == set(slack_surface.BOT_EVENTS)
    for name in events:
        _, scope = slack_surface.BOT_EVENTS[name]
        assert scope in scopes, f"event {name} needs scope {scope}"


def test_slash_command_declared(manifest):
    commands = [c["command"] for c in manifest["features"]["slash_commands"]]
    assert commands == [slack_surface.SLASH_COMMAND]
    assert "commands" in manifest["oauth_config"]["scopes"]["bot"]


# -- listeners vs subscriptions (introspecting the App's registered listeners) ---------------

_CHANNEL_TYPE = {"message.channels": "channel", "message.groups": "group", "message.im": "im"}


def _event_request(subscription: str) -> BoltRequest:
    event_type, _ = slack_surface.BOT_EVENTS[subscription]
    event = {
        "type": event_type,
        "user": "U0SOMEONE",
        "channel": "C0SOMEWHERE",
        "text": "hello",
        "ts": "1712000000.000100",
        "event_ts": "1712000000.000100",
    }
    if subscription in _CHANNEL_TYPE:
        event["channel_type"] = _CHANNEL_TYPE[subscription]
    if event_type == "file_shared":
        event = {
            "type": "file_shared",
            "file_id": "F0X",
            "user_id": "U0SOMEONE",
            "file": {"id": "F0X"},
            "channel_id": "C0SOMEWHERE",
            "event_ts": "1.2",
        }
    body = {
        "type": "event_callback",
        "team_id": "T0STANDIN",
        "api_app_id": "A0ROSTERBOT",
        "event_id": f"Ev-{subscription}",
        "event": event,
    }
    return BoltRequest(body=body, mode="socket_mode")


def _command_request(command: str) -> BoltRequest:
    body = {
        "command": command,
        "text": "help",
        "user_id": "U0SOMEONE",
        "channel_id": "C0SOMEWHERE",
        "team_id": "T0STANDIN",
        "response_url": "http://127.0.0.1:9/none",
        "trigger_id": "1.2.3",
    }
    return BoltRequest(body=body, mode="socket_mode")


def _action_request(action_id: str) -> BoltRequest:
    body = {
        "type": "block_actions",
        "team": {"id": "T0STANDIN"},
        "user": {"id": "U0SOMEONE"},
        "channel": {"id": "C0SOMEWHERE"},
        "api_app_id": "A0ROSTERBOT",
        "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": "{}"}],
        "response_url": "http://127.0.0.1:9/none",
        "trigger_id": "1.2.3",
    }
    return BoltRequest(body=body, mode="socket_mode")


def _declared_requests(manifest: dict) -> dict[str, BoltRequest]:
    requests = {
        f"event {e}": _event_request(e)
        for e in manifest["settings"]["event_subscriptions"]["bot_events"]
    }
    for c in manifest["features"]["slash_commands"]:
        requests[f"command {c['command']}"] = _command_request(c["command"])
    if manifest["settings"]["interactivity"]["is_enabled"]:
        for action_id in slack_surface.ACTION_IDS:
            requests[f"action {action_id}"] = _action_request(action_id)
    return requests


def _matching(app, req: BoltRequest) -> list:
    return [lst for lst in app._listeners if lst.matches(req=req, resp=BoltResponse(status=200))]


def test_every_subscription_has_a_listener(app, manifest):
    for what, req in _declared_requests(manifest).items():
        assert _matching(app, req), f"{what} is declared in manifest.yml but no listener handles it"


def test_every_listener_has_its_subscription(app, manifest):
    requests = list(_declared_requests(manifest).values())
    for listener in app._listeners:
        assert any(listener.matches(req=r, resp=BoltResponse(status=200)) for r in requests), (
            f"listener {listener.ack_function.__name__} handles nothing manifest.yml subscribes to"
        )
