"""Configuration errors name the fix: the key a misspelt one resembles, the variable that can hold
a missing secret, quotes for a number where text is wanted."""

import pytest

from workers.errors import ConfigError
from workers.runtime.config import settings_from_dict

META = {"app_secrets": ["s"], "verify_token": "t"}


@pytest.mark.parametrize("doc, message", [
    ({"meta": {"app_secrets": ["s"], "verify_tokn": "t"}},
     "meta.verify_tokn: unknown key (did you mean verify_token?)"),
    ({"meta": META, "queue": {"visibilty_timeout": 5}},
     "queue.visibilty_timeout: unknown key (did you mean visibility_timeout?)"),
    ({"meta": META, "hydration": {"coalesce": 1}}, "hydration.coalesce: unknown key"),
    ({"meta": {"verify_token": "t"}}, "meta.app_secrets: missing required key (or set META_APP_SECRET)"),
    ({"meta": {"app_secrets": ["s"]}}, "meta.verify_token: missing required key (or set META_VERIFY_TOKEN)"),
    ({"meta": META, "accounts": [{"page_id": 1234567890, "access_token": "x"}]},
     'accounts[0].page_id must be a string: quote it (page_id = "1234567890")'),
])
def test_the_error_says_what_to_do(doc, message):
    with pytest.raises(ConfigError) as raised:
        settings_from_dict(doc, env={})
    assert str(raised.value) == message


def test_a_python_handler_finds_a_module_beside_the_configuration(tmp_path):
    import uuid

    from workers.delivery.plugins import load_handlers
    from workers.runtime.config import load_settings

    module = f"mine_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text("seen = []\n\ndef handle(event):\n    seen.append(event)\n")
    config = tmp_path / "c.toml"
    config.write_text('[meta]\napp_secrets = ["s"]\nverify_token = "t"\n'
                      f'[[handlers]]\ntype = "python"\ntarget = "{module}:handle"\n')
    [loaded] = load_handlers(load_settings(config, env={})).values()
    assert loaded.handler.function.__module__ == module
