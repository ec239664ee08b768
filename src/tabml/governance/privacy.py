"""Personal data: keyed pseudonyms that cannot be reversed without the key.

HMAC-SHA256 with a secret key from the environment: the same value always maps to the same
pseudonym (so joins and counts still work), and nobody without the key can test guesses.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from tabml.core.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

KEY_ENV = "TABML_PII_KEY"
MIN_KEY_BYTES = 32


def key_from_env(env: Mapping[str, str], needed: bool) -> bytes | None:
    """The pseudonymisation key, or a clear error when a dataset needs one and it is unset."""
    return require_key(env) if needed else None


def require_key(
    env: Mapping[str, str], why: str = "this dataset pseudonymises personal data"
) -> bytes:
    """The pseudonymisation key, or a clear error saying `why` it is needed."""
    from tabml.core.secrets import from_env

    raw = from_env(env, KEY_ENV)
    if not raw:
        raise ConfigError(
            f"{why}, but {KEY_ENV} is not set (nor "
            f"{KEY_ENV}_FILE, a file holding it). Set it to a "
            f"secret of at least {MIN_KEY_BYTES} bytes (e.g. `export {KEY_ENV}=$(openssl rand "
            "-hex 32)`) and keep it out of the repository; use the same key for every run "
            "whose outputs must join."
        )
    key = raw.encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"{KEY_ENV} is too short: use at least {MIN_KEY_BYTES} bytes")
    return key


def pseudonymise(values: pd.Series, key: bytes) -> pd.Series:
    """Replace every non-empty value by its HMAC-SHA256 hex digest; empty stays empty."""
    import pandas as pd

    def one(v: object) -> object:
        if pd.isna(v):  # type: ignore[call-overload]
            return pd.NA
        return hmac.new(key, str(v).encode("utf-8"), hashlib.sha256).hexdigest()

    return values.map(one).astype("string")


def apply(
    frame: pd.DataFrame, pii: Mapping[str, Literal["pseudonymise", "drop"]], key: bytes | None
) -> pd.DataFrame:
    """A copy of frame with personal-data columns pseudonymised or dropped."""
    present = {c: a for c, a in pii.items() if c in frame.columns}
    dropped = [c for c, a in present.items() if a == "drop"]
    out = frame.drop(columns=dropped)
    replaced = {c: a for c, a in present.items() if a == "pseudonymise"}
    if replaced and key is None:
        raise ConfigError(f"pseudonymising {sorted(replaced)} needs {KEY_ENV}")
    return out.assign(**{c: pseudonymise(out[c], key) for c in replaced if key is not None})
