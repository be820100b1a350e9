"""`inbox-relay init` and where `--config` comes from, through the real command line."""

from __future__ import annotations

import stat
import tomllib

import pytest

from tests.cli_run import cli
from workers.crypto import check_key
from workers.errors import ConfigError
from workers.runtime.config import load_settings


def test_init_writes_a_private_valid_configuration(tmp_path):
    result = cli("init", "--page-id", "1234567890", "--page-id", "987654321", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "inbox-relay.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    settings = load_settings(path, env={})
    assert [a.page_id for a in settings.accounts] == ["1234567890", "987654321"]
    assert len(settings.meta.verify_token) >= 32
    check_key(settings.security.encryption_keys[0])  # raises unless a Fernet key
    assert [h.type for h in settings.handlers] == ["jsonl"]
    assert settings.handlers[0].options["path"] == str(tmp_path / "var" / "events.jsonl")
    assert "META_PAGE_TOKEN_1234567890" in path.read_text()  # the comment that points to the variable
    with_token = load_settings(path, env={"META_PAGE_TOKEN_1234567890": "from-env"})
    assert with_token.accounts[0].access_token == "from-env"
    # The output never shows what the file keeps secret.
    assert settings.meta.verify_token not in result.stdout + result.stderr
    assert settings.security.encryption_keys[0] not in result.stdout + result.stderr


def test_each_init_makes_new_secrets_and_comments_parse(tmp_path):
    assert cli("init", "--path", "a.toml", cwd=tmp_path).returncode == 0
    assert cli("init", "--path", "b.toml", cwd=tmp_path).returncode == 0
    a, b = (tomllib.loads((tmp_path / name).read_text()) for name in ("a.toml", "b.toml"))
    assert a["meta"]["verify_token"] != b["meta"]["verify_token"]
    assert a["security"]["encryption_keys"] != b["security"]["encryption_keys"]
    assert "accounts" not in a  # no --page-id: the accounts table is only shown, commented out
    assert load_settings(tmp_path / "a.toml", env={}).accounts == ()


def test_init_refuses_to_overwrite_without_force(tmp_path):
    assert cli("init", cwd=tmp_path).returncode == 0
    path = tmp_path / "inbox-relay.toml"
    before = path.read_text()
    again = cli("init", "--page-id", "55", cwd=tmp_path)
    assert again.returncode != 0 and "--force" in again.stderr and "Traceback" not in again.stderr
    assert path.read_text() == before
    forced = cli("init", "--page-id", "55", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert path.read_text() != before and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_settings(path, env={}).accounts[0].page_id == "55"
    assert [p.name for p in tmp_path.iterdir()] == ["inbox-relay.toml"]  # no temporary file left


def test_init_rejects_a_page_id_that_is_no_number(tmp_path):
    result = cli("init", "--page-id", "my-page", cwd=tmp_path)
    assert result.returncode == 2 and "no page id" in result.stderr
    assert not (tmp_path / "inbox-relay.toml").exists()


def test_config_defaults_to_the_variable_then_the_file_here(tmp_path):
    here = tmp_path / "here"
    here.mkdir()
    nothing = cli("check", cwd=here)
    assert nothing.returncode == 1 and "inbox-relay init" in nothing.stderr
    assert "INBOX_RELAY_CONFIG" in nothing.stderr and "Traceback" not in nothing.stderr

    assert cli("init", "--page-id", "111", cwd=here).returncode == 0
    local = cli("check", cwd=here)  # reads ./inbox-relay.toml
    assert "inbox-relay.toml is valid" in local.stdout and "account 111" in local.stdout

    elsewhere = tmp_path / "other.toml"
    assert cli("init", "--path", str(elsewhere), "--page-id", "222", cwd=tmp_path).returncode == 0
    from_variable = cli("check", cwd=here, env={"INBOX_RELAY_CONFIG": str(elsewhere)})
    assert "account 222" in from_variable.stdout and "account 111" not in from_variable.stdout


def test_a_placeholder_token_is_named_by_check(tmp_path):
    assert cli("init", "--page-id", "111", cwd=tmp_path).returncode == 0
    result = cli("check", cwd=tmp_path)
    assert result.returncode == 1
    assert "FAIL  account 111: access_token is still the placeholder" in result.stdout
    assert "FAIL  meta: app_secrets still holds the placeholder" in result.stdout


def test_a_broken_configuration_fails_cleanly(tmp_path):
    (tmp_path / "inbox-relay.toml").write_text('[meta]\napp_secrets = ["s"]\n')
    result = cli("check", cwd=tmp_path)
    assert result.returncode == 1 and "meta.verify_token" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(ConfigError):
        load_settings(tmp_path / "inbox-relay.toml", env={})
