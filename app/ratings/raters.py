"""Rater state: the `Ratings` object the rating routes share (store, cookie signer, gold images, the campaign plan,
the results cache)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from itsdangerous import BadSignature, URLSafeSerializer

from app.ratings.campaign import DEFAULT_PLAN, load_campaign
from app.ratings.crowd import load_crowds
from app.ratings.gold import gold_images, gold_png
from app.store import VoteStore

USER_AGENTS = (
    ("HeadlessChrome", "headless-chrome"),
    ("Edg/", "edge"),
    ("Chrome/", "chrome"),
    ("Firefox/", "firefox"),
    ("Safari/", "safari"),
    ("python-httpx", "httpx"),
    ("curl/", "curl"),
    ("testclient", "testclient"),
)


class Ratings:
    """Everything the rating routes share: the store, the cookie signer, gold images, the results cache."""

    def __init__(self, settings, store: VoteStore):
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None
        self.ephemeral_key = secret is None
        self.signer = URLSafeSerializer(secret or np.random.default_rng().bytes(32).hex(), salt="rater")
        self.settings, self.store = settings, store
        self._results: dict[str, Any] | None = None
        self._results_lock = threading.Lock()
        self.gold_digits = gold_images("gold_digits.npz", "digits")
        self.gold_noise = gold_images("gold_noise.npz", "images")
        self.campaign = load_campaign(settings.campaign_plan or DEFAULT_PLAN)
        self.crowds = load_crowds(settings.crowd_campaigns)
        self._campaign: dict[str, Any] | None = None
        self._campaign_at = 0.0
        self._campaign_lock = threading.Lock()

    def sign(self, rid: str) -> str:
        """The cookie value that names this rater."""
        return self.signer.dumps(rid)

    def rater_in(self, cookie: str | None) -> str | None:
        """The rater a cookie value names: None when absent, tampered with, or naming no stored rater."""
        if not cookie:
            return None
        try:
            rid = self.signer.loads(cookie)
        except BadSignature:
            return None
        return rid if isinstance(rid, str) and self.store.rater(rid) is not None else None

    def gold_png(self, model: str, seed: int, n: int) -> bytes:
        return gold_png(self.gold_digits, self.gold_noise, model, seed, n)


def ua_family(ua: str) -> str:
    """The browser family of a User-Agent string, stored with each vote (never the full string)."""
    ua = ua or ""
    for needle, name in USER_AGENTS:
        if needle in ua:
            return name
    return "other"
