"""Request metadata of the season profile: client strings, API-key creation dates, payment fingerprints.

Per-account attributes live in compact arrays (a few bytes an account) and become strings only when a
block renders. What organic traffic looks like: a handful of SDK and browser strings shared by
thousands, keys created over years, payment fingerprints mostly unique but shared inside families and
companies (a few accounts, now and then a company with 10-30). What campaigns leave behind is set per
campaign by `Infra.assign_campaign` at one of three trace levels, so some campaigns are easy to see
from their infrastructure and some must be found by their content alone.
"""

from __future__ import annotations

import numpy as np

from synth.config import META_COLUMNS

# Common clients, most used first; the first is shared by about a third of organic accounts.
COMMON_CLIENTS: tuple[str, ...] = (
    "hound-python/1.42.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "hound-node/4.3.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "hound-python/1.39.2",
    "langchain-hound/0.2.7",
    "Mozilla/5.0 (X11; Linux x86_64; rv:129.0) Gecko/20100101 Firefox/129.0",
    "HoundApp/3.8 (Android 14; Pixel 8)",
    "python-httpx/0.27.0",
    "hound-go/0.9.4",
    "llamaindex/0.11.3",
    "python-requests/2.32.3",
    "curl/8.7.1",
    "hound-java/2.1.0",
    "axios/1.7.4",
)
_COMMON_P = 1.0 / np.arange(1, len(COMMON_CLIENTS) + 1) ** 1.1
_COMMON_P = _COMMON_P / _COMMON_P.sum()
# Odd clients a campaign operator's own harness might send; each campaign with a strong trace picks one.
ODD_CLIENTS: tuple[str, ...] = (
    "aiohttp/3.9.5 Python/3.11",
    "distill-harness/0.4.2 (+httpx)",
    "Go-http-client/2.0",
    "okhttp/4.12.0",
    "python-urllib3/2.2.2",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "reqwest/0.12.5",
    "hound-python/0.28.1",
    "Apache-HttpClient/5.3.1 (Java/17.0.11)",
    "python-httpx/0.23.3",
    "evalkit-runner/1.0.0",
    "PostmanRuntime/7.39.0",
)
CLIENTS: tuple[str, ...] = COMMON_CLIENTS + ODD_CLIENTS
_ODD_BASE = len(COMMON_CLIENTS)
TRACES: tuple[str, ...] = ("strong", "medium", "none")
_DAY_S = 86_400
_PAYMENT_MULT = 0x9E3779B97F4B  # odd, so id -> fingerprint is a bijection mod 2**48


class Infra:
    """Per-account client, second client, key creation day and payment id; rendered per block.

    ``key_day`` is days from the period start (negative: before it); ``payment`` ids are integers
    turned into 12-hex-digit fingerprints by a bijection, so distinct ids never collide.
    """

    def __init__(self, rng: np.random.Generator, n_accounts: int, start_epoch: int, seed: int) -> None:
        self.rng = rng
        self.start_epoch = start_epoch
        self.salt = (seed * 0x5851F42D4C957F2D + 0x14057B7EF767814F) % (1 << 48)
        self.client = np.zeros(n_accounts, dtype=np.int16)
        self.client2 = np.zeros(n_accounts, dtype=np.int16)
        self.key_day = np.zeros(n_accounts, dtype=np.int32)
        self.payment = np.zeros(n_accounts, dtype=np.int64)
        self.next_payment = 0

    # --- organic ---------------------------------------------------------------------------

    def assign_organic(self, accts: np.ndarray) -> None:
        """People: common clients (a web UI and an SDK, say), keys over five years, family payments."""
        rng, n = self.rng, len(accts)
        self.client[accts] = rng.choice(len(COMMON_CLIENTS), size=n, p=_COMMON_P)
        self.client2[accts] = rng.choice(len(COMMON_CLIENTS), size=n, p=_COMMON_P)
        # Most keys are recent, a long tail goes back years; some are created during the period.
        self.key_day[accts] = np.minimum(
            -np.floor(rng.exponential(420, size=n)).astype(np.int32) + rng.integers(-3, 25, size=n), 28
        ).clip(-1900)
        self.payment[accts] = self._grouped_payments(n)

    def _grouped_payments(self, n: int) -> np.ndarray:
        """Fingerprint ids for ``n`` accounts: mostly one each, some families and a few companies."""
        rng = self.rng
        est = n + 16
        u = rng.random(est)
        size = np.where(
            u < 0.87, 1, np.where(u < 0.985, rng.integers(2, 5, size=est), np.where(
                u < 0.997, rng.integers(5, 10, size=est), rng.integers(10, 31, size=est)))
        )
        size = size[: int(np.searchsorted(np.cumsum(size), n)) + 1]
        ids = np.repeat(np.arange(len(size), dtype=np.int64), size)[:n] + self.next_payment
        self.next_payment += len(size)
        return ids[rng.permutation(n)]

    def assign_integration(self, a: int) -> None:
        """A company's integration: an SDK client, an old key, the company's own card."""
        rng = self.rng
        self.client[a] = self.client2[a] = int(rng.choice([0, 3, 5, 6, 9, 10, 11, 14]))
        self.key_day[a] = -int(rng.integers(30, 1200))
        self.payment[a] = self._new_ids(1)[0]

    # --- campaigns -------------------------------------------------------------------------

    def assign_campaign(self, accts: np.ndarray, trace: str, start_day: int) -> None:
        """Client, keys and payments for one campaign's accounts at a trace level.

        ``strong``: an odd harness client shared by all, keys made in a burst of a few days just before
        the campaign starts, two or three cards for everyone. ``medium``: a common but minority client,
        keys over a few weeks, a card per 10-50 accounts. ``none``: a careful operator: the commonest
        client, keys spread like organic ones, a card per account.
        """
        rng, n = self.rng, len(accts)
        if trace == "strong":
            self.client[accts] = self.client2[accts] = _ODD_BASE + int(rng.integers(0, len(ODD_CLIENTS)))
            base = start_day - int(rng.integers(1, 15))
            self.key_day[accts] = base + rng.integers(0, 3, size=n)
            ids = self._new_ids(int(rng.integers(1, 4)))
            self.payment[accts] = ids[rng.integers(0, len(ids), size=n)]
        elif trace == "medium":
            self.client[accts] = self.client2[accts] = int(rng.choice([3, 6, 9, 10, 12]))
            base = start_day - int(rng.integers(10, 40))
            self.key_day[accts] = base + rng.integers(0, 21, size=n)
            ids = self._new_ids(max(1, n // int(rng.integers(10, 51))))
            self.payment[accts] = ids[rng.integers(0, len(ids), size=n)]
        else:
            self.client[accts] = self.client2[accts] = 0
            self.key_day[accts] = np.minimum(
                -np.floor(rng.exponential(420, size=n)).astype(np.int32), start_day
            ).clip(-1900)
            self.payment[accts] = self._new_ids(n)

    def _new_ids(self, k: int) -> np.ndarray:
        ids = np.arange(self.next_payment, self.next_payment + k, dtype=np.int64)
        self.next_payment += k
        return ids

    # --- render ----------------------------------------------------------------------------

    def columns(self, rs: np.random.Generator, acct: np.ndarray) -> dict[str, list[str]]:
        """The metadata columns for a block's rows (``acct``: internal account numbers)."""
        n = len(acct)
        # A person switches between the web UI and an SDK now and then; a harness never does.
        client = np.where(rs.random(n) < 0.25, self.client2[acct], self.client[acct])
        days = (self.start_epoch // _DAY_S + self.key_day[acct]).astype("datetime64[D]")
        # uint64 wraps mod 2**64, and 2**48 divides that: the fingerprint stays a bijection of the id.
        fp = (self.payment[acct].astype(np.uint64) * np.uint64(_PAYMENT_MULT) + np.uint64(self.salt)) & np.uint64(
            (1 << 48) - 1
        )
        return dict(zip(META_COLUMNS, (
            [CLIENTS[c] for c in client.tolist()],
            np.datetime_as_string(days, unit="D").tolist(),
            [f"{v:012x}" for v in fp.tolist()],
        ), strict=True))
