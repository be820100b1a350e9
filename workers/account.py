"""`[[accounts]]`: one account inbox-relay serves, and how it logs in to the Graph API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Section(BaseModel):
    """A table of the file: typed strictly, unknown keys refused, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Account(Section):
    """`[[accounts]]`: one Facebook Page, optionally with its linked Instagram account; or, with
    `login = "instagram"`, an Instagram professional account without a Page (Instagram Login).

    `page_id` is the key every stored record of the account uses (budgets, pauses, sync jobs); an
    Instagram Login account has none in the file and takes its `instagram_id` for it.
    """

    login: Literal["facebook", "instagram"] = "facebook"
    page_id: str = ""
    access_token: str = ""
    instagram_id: str | None = None
    calls_per_second: float = Field(2.0, gt=0)

    @model_validator(mode="after")
    def _keyed_by_its_login(self) -> Account:
        if self.login == "facebook" and not self.page_id:
            raise ValueError("page_id: missing required key (or login = \"instagram\" for an Instagram "
                             "account without a Page)")
        if self.login == "instagram":
            if not self.instagram_id:
                raise ValueError("instagram_id: required with login = \"instagram\" (the account's "
                                 "user_id, the entry.id of its webhooks)")
            if self.page_id and self.page_id != self.instagram_id:
                raise ValueError("page_id: not used with login = \"instagram\" (the account has no Page)")
            object.__setattr__(self, "page_id", self.instagram_id)
        return self

    @property
    def instagram_login(self) -> bool:
        """Whether the account uses Instagram Login: graph.instagram.com and an Instagram user token."""
        return self.login == "instagram"

    @property
    def platforms(self) -> tuple[str, ...]:
        """The inboxes the account has: a Page's Messenger (and its Instagram account's), or the
        Instagram inbox alone."""
        if self.instagram_login:
            return ("instagram",)
        return ("messenger", "instagram") if self.instagram_id else ("messenger",)

    @property
    def node(self) -> str:
        """The Graph node of the account's own edges (conversations, subscribed_apps): its Page,
        or `me` for an Instagram Login token."""
        return "me" if self.instagram_login else self.page_id
