from pathlib import Path

import pytest

from tests.harness import present
from workers.errors import ConfigError
from workers.runtime.config import load_settings, settings_from_dict

MINIMAL = {"meta": {"app_secrets": ["s1"], "verify_token": "v"}}


def test_minimal_configuration_has_sane_defaults():
    settings = settings_from_dict(MINIMAL, env={})
    assert settings.meta.app_secrets == ("s1",)
    assert settings.meta.graph_url == "https://graph.facebook.com"
    assert settings.embedded and settings.celery_broker_url.startswith("redis+socket://")
    assert settings.redis_store_url.startswith("unix://")
    assert settings.web.max_body_bytes == 1024 * 1024


@pytest.mark.parametrize("doc, key", [
    ({"meta": {"verify_token": "v"}}, "meta.app_secrets"),
    ({"meta": {"app_secrets": ["s"]}}, "meta.verify_token"),
    ({**MINIMAL, "queue": {"brokr_url": "x"}}, "queue.brokr_url"),
    ({**MINIMAL, "extra": {}}, "extra"),
    ({"meta": {"app_secrets": "s", "verify_token": "v"}}, "meta.app_secrets"),
    ({"meta": {"app_secrets": [], "verify_token": "v"}}, "meta.app_secrets"),
    ({**MINIMAL, "accounts": [{"page_id": 1, "access_token": "t"}]}, "accounts[0].page_id"),
    ({**MINIMAL, "accounts": [{"page_id": "1"}]}, "accounts[0].access_token"),
    ({**MINIMAL, "handlers": [{"path": "x"}]}, "handlers[0].type"),
    ({**MINIMAL, "handlers": [{"type": "jsonl"}, {"type": "jsonl"}]}, "handlers[1].name"),
    ({**MINIMAL, "queue": {"broker_url": "amqp://guest@localhost//"}}, "queue.store_url"),
    ({**MINIMAL, "web": {"max_body_bytes": "big"}}, "web.max_body_bytes"),
    ({**MINIMAL, "handlers": [{"type": "jsonl", "kinds": "message_edit"}]}, "handlers[0].kinds"),
    ({**MINIMAL, "handlers": [{"type": "jsonl", "kinds": ["mesage"]}]}, "handlers[0].kinds[0]"),
    ({**MINIMAL, "handlers": [{"type": "jsonl", "name": "crm|eu"}]}, "handlers[0].name"),
    ({"meta": {"app_secrets": ["s"], "verify_token": ""}}, "meta.verify_token"),
])
def test_errors_name_the_key(doc, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        _ = settings_from_dict(doc, env={}).redis_store_url


def test_environment_overrides_secrets():
    doc = {"meta": {"app_secrets": ["file"], "verify_token": "file"},
           "accounts": [{"page_id": "42"}]}
    env = {"META_APP_SECRET": "a, b", "META_VERIFY_TOKEN": "env-token", "META_PAGE_TOKEN_42": "tok"}
    settings = settings_from_dict(doc, env=env)
    assert settings.meta.app_secrets == ("a", "b")
    assert settings.meta.verify_token == "env-token"
    assert settings.accounts[0].access_token == "tok"


def test_file_paths_are_relative_to_the_file(tmp_path: Path):
    path = tmp_path / "conf.toml"
    path.write_text('[meta]\napp_secrets=["s"]\nverify_token="v"\n[queue]\ndata_dir="data"\n'
                    '[[handlers]]\ntype="jsonl"\npath="out/e.jsonl"\n')
    settings = load_settings(path, env={})
    assert settings.data_dir == tmp_path / "data"
    assert settings.handlers[0].options["path"] == str(tmp_path / "out/e.jsonl")


def test_the_path_options_a_plugin_declares_are_relative_to_the_file(tmp_path: Path, monkeypatch):
    # A real distribution on sys.path with an entry point, as `pip install` would leave it.
    plugins = tmp_path / "site"
    (plugins / "archive_plugin.py").parent.mkdir()
    (plugins / "archive_plugin.py").write_text(
        "class Archive:\n    path_options = ('folder', 'index')\n"
        "    def __init__(self, *, name, folder, index, url='', path='x'):\n        self.name = name\n"
        "    def handle(self, event):\n        pass\n")
    info = plugins / "archive_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: archive-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[inbox_relay.handlers]\narchive = archive_plugin:Archive\n")
    monkeypatch.syspath_prepend(str(plugins))
    config = tmp_path / "conf" / "c.toml"
    config.parent.mkdir()
    config.write_text('[meta]\napp_secrets=["s"]\nverify_token="v"\n[[handlers]]\ntype="archive"\n'
                      'folder="media"\nindex="/srv/index.db"\nurl="https://example.com/x"\npath="p"\n')
    options = load_settings(config, env={}).handlers[0].options
    assert options["folder"] == str(config.parent / "media")
    assert options["index"] == "/srv/index.db", "an absolute path stays as it is"
    assert (options["url"], options["path"]) == ("https://example.com/x", "p"), "not declared: unchanged"


def test_missing_file_and_bad_toml_are_clear(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[meta\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, env={})
    with pytest.raises(ConfigError, match="INBOX_RELAY_CONFIG"):
        load_settings(None, env={})


def test_instagram_account_maps_to_its_page():
    doc = {**MINIMAL, "accounts": [{"page_id": "1", "instagram_id": "178", "access_token": "t"}]}
    settings = settings_from_dict(doc, env={})
    assert present(settings.account_for("178")).page_id == "1"
    assert present(settings.account_for("1")).page_id == "1"
    assert settings.account_for("2") is None


class Closer:
    """A handler that notes its close(); `fails` makes close raise, as a buggy plugin's might."""

    def __init__(self, *, fails: bool = False):
        self.name, self.fails, self.closed = "closer", fails, False

    def handle(self, event) -> None:
        pass

    def close(self) -> None:
        self.closed = True
        if self.fails:
            raise RuntimeError("bug in close")


def test_a_reload_closes_the_handlers_it_replaces(tmp_path, monkeypatch):
    import os

    from workers.delivery.plugins import LoadedHandler
    from workers.runtime.context import RuntimeCache
    from workers.settings import HandlerConfig

    config = tmp_path / "c.toml"
    config.write_text('[meta]\napp_secrets = ["s"]\nverify_token = "t"\n'
                      '[queue]\nbroker_url = "redis://127.0.0.1:6379/0"\n'
                      f'[[handlers]]\ntype = "jsonl"\npath = "{tmp_path / "e.jsonl"}"\n')
    monkeypatch.setenv("INBOX_RELAY_CONFIG", str(config))
    cache = RuntimeCache(lambda name, args, countdown: None)
    first = cache.get()
    assert cache.get() is first
    buggy, fine = Closer(fails=True), Closer()
    first.handlers["buggy"] = LoadedHandler(buggy, HandlerConfig(type="x", name="buggy"))
    first.handlers["fine"] = LoadedHandler(fine, HandlerConfig(type="x", name="fine"))
    stat = config.stat()
    os.utime(config, (stat.st_atime, stat.st_mtime + 5))
    second = cache.get()
    assert second is not first and (buggy.closed, fine.closed) == (True, True)
    assert "buggy" not in second.handlers


def test_a_handler_may_take_only_unsends_and_edits():
    doc = {**MINIMAL, "handlers": [{"type": "jsonl", "kinds": ["message_delete", "message_edit"]}]}
    assert settings_from_dict(doc, env={}).handlers[0].kinds == ("message_delete", "message_edit")
