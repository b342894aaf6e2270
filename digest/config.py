"""Settings, read from DIGEST_* environment variables and a `.env` file.

Every setting is listed with its default in `.env.example`. `load_settings`
turns pydantic's validation errors into one readable line per variable, so
an operator never sees a traceback for a typo.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from digest import validate
from digest.errors import ConfigError, InvalidField
from digest.phrases import topic_problem
from digest.settings_help import (
    FORMATS,
    database_url_problem,
    explain,
    shown_value,
    unknown_names,
)

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
SAMPLE_FEEDS_DIR = PACKAGE_DIR / "sample_feeds"
# In a wheel the top-level templates/ is packaged as digest/templates; in a
# source checkout it sits beside the package.
DEFAULT_TEMPLATES_DIR = next(
    (p for p in (PACKAGE_DIR / "templates", PACKAGE_DIR.parent / "templates") if p.is_dir()),
    PACKAGE_DIR / "templates",
)

ENV_PREFIX = "DIGEST_"
ENV_FILE = ".env"
# Long enough that guessing it is hopeless; `digest secret` makes 43 characters.
MIN_SECRET_KEY_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
        # `.env.example` copied as is leaves many values empty: empty means the default.
        env_ignore_empty=True,
    )

    # Storage and sources
    database_url: str = "sqlite:///digest.db"
    feeds: Annotated[list[str], NoDecode] = Field(default_factory=list)
    window_hours: float = Field(24, gt=0, le=24 * 31)
    timezone: str = "UTC"
    list_id: str = "digest"

    # Collection
    fetch_timeout: float = Field(20, gt=0)
    fetch_concurrency: int = Field(16, ge=1, le=512)
    max_feed_bytes: int = Field(10_000_000, ge=1024)
    summary_length: int = Field(300, ge=40, le=5000)
    fetch_total_timeout: float = Field(60, gt=0)
    fetch_per_host: int = Field(4, ge=1, le=64)
    fetch_retries: int = Field(2, ge=0, le=10)
    fetch_backoff: float = Field(1.0, ge=0)
    fetch_max_retry_after: float = Field(120, ge=0)
    feed_dead_after: int = Field(5, ge=1)
    parse_workers: int = Field(0, ge=0, le=64)
    parse_timeout: float = Field(5, gt=0, le=600)

    # Mail
    smtp_host: str = "localhost"
    smtp_port: int = Field(0, ge=0, le=65535)
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_timeout: float = Field(30, gt=0)
    from_address: str = "digest@example.com"
    from_name: str = "Morning Digest"
    subject: str = "Your morning digest, {{ date }}: {{ top_themes }}"
    postal_address: str = ""

    # Sending: pool, pace, retries, bounces, deliverability headers and DKIM
    send_connections: int = Field(4, ge=1, le=64)
    send_messages_per_connection: int = Field(100, ge=1)
    send_rate: float = Field(0, ge=0)
    send_attempts: int = Field(5, ge=1, le=50)
    send_backoff: float = Field(2, gt=0)
    send_backoff_max: float = Field(300, gt=0)
    send_lock_timeout: float = Field(300, gt=0)
    bounce_threshold: int = Field(3, ge=1)
    list_unsubscribe_mailto: str = ""
    feedback_id: str = ""
    dkim_key_file: Path | None = None
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_ed25519_key_file: Path | None = None
    dkim_ed25519_selector: str = ""
    max_message_bytes: int = Field(1_000_000, ge=50_000)
    # Operator alerts: where they go (empty: warnings in the log and `digest runs` only),
    # and how many bounces in one run are worth one.
    alert_to: str = ""
    alert_bounces: int = Field(10, ge=1)

    # Subscribers and the web app (unsubscribe, preferences)
    secret_key: SecretStr = SecretStr("")
    # Empty: no public web app; links go to `digest serve` on DIGEST_SERVE_HOST:PORT and
    # messages mention no web edition.
    public_url: str = ""
    archive: Literal["public", "off"] = "public"
    serve_host: str = "127.0.0.1"
    serve_port: int = Field(8000, ge=1, le=65535)
    quiet_day: Literal["skip", "note"] = "skip"

    # Grouping (0 = no cap; caps only hide, `preview --format json` lists everything)
    max_themes: int = Field(10, ge=0)
    max_articles_per_theme: int = Field(5, ge=0)
    topics: Annotated[dict[str, list[str]], NoDecode] = Field(default_factory=dict)
    # The operator's own model2vec folder for articles' meaning; empty: the bundled model.
    embedding_model: Path | None = None

    # Output
    templates_dir: Path | None = None
    output_dir: Path = Path("preview")

    # Scheduling and operations
    send_at: str = "06:30"
    # Until then `digest schedule` retries a failed collection; then it sends what it has.
    send_deadline: str = "09:00"
    # Below this share of recent editions' articles, with feeds failing, a run is an outage.
    collect_min_share: float = Field(0.25, ge=0, le=1)
    catch_up_hours: float = Field(3, ge=0, le=24)
    log_format: Literal["auto", "text", "json"] = "auto"
    # A test clock for `digest schedule`: start time and speed-up. Never set in production.
    clock_start: AwareDatetime | None = None
    clock_speed: float = Field(1.0, gt=0, le=1_000_000)

    @field_validator("feeds", mode="before")
    @classmethod
    def _split_feeds(cls, value: object) -> object:
        if isinstance(value, str):
            return _parse_feed_list(value)
        return value

    @field_validator("topics", mode="before")
    @classmethod
    def _split_topics(cls, value: object) -> object:
        if isinstance(value, str):
            return _parse_topics(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return validate.time_zone(value)

    @field_validator("database_url")
    @classmethod
    def _usable_database_url(cls, value: str) -> str:
        database_url_problem(value, Path.cwd())
        return value

    @field_validator(*FORMATS)
    @classmethod
    def _formatted(cls, value: str, info: ValidationInfo) -> str:
        rule, advice, example = FORMATS[str(info.field_name)]
        if not re.fullmatch(rule, value):
            raise ValueError(f"{advice}, e.g. {example}")
        return value

    @field_validator("send_deadline")
    @classmethod
    def _deadline_after_send_time(cls, value: str, info: ValidationInfo) -> str:
        send_at = info.data.get("send_at")
        if send_at and value <= send_at:
            raise ValueError(
                f"must be later in the day than DIGEST_SEND_AT ({send_at}), "
                f"e.g. {min(int(send_at[:2]) + 2, 23):02d}:{send_at[3:]}"
            )
        return value

    @field_validator("from_address")
    @classmethod
    def _valid_from_address(cls, value: str) -> str:
        try:
            return validate.email_address(value)
        except InvalidField as exc:
            raise ValueError(f"{exc}, e.g. digest@example.com") from None

    @field_validator("alert_to")
    @classmethod
    def _valid_alert_to(cls, value: str) -> str:
        if not value.strip():
            return ""
        try:
            return validate.email_address(value)
        except InvalidField as exc:
            raise ValueError(f"{exc}, e.g. ops@example.com; leave it empty for none") from None

    @field_validator("secret_key")
    @classmethod
    def _long_secret_key(cls, value: SecretStr) -> SecretStr:
        length = len(value.get_secret_value())
        if 0 < length < MIN_SECRET_KEY_LENGTH:
            raise ValueError(
                f"is {length} characters long; use at least {MIN_SECRET_KEY_LENGTH}, "
                "e.g. a key from `digest secret`"
            )
        return value

    @field_validator("from_name", "subject", "feedback_id", "list_unsubscribe_mailto")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return one_line_setting(value)

    @field_validator("templates_dir")
    @classmethod
    def _templates_dir_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{value} is not a directory; name one, e.g. ./my-templates")
        return value

    @field_validator("embedding_model")
    @classmethod
    def _model2vec_folder(cls, value: Path | None) -> Path | None:
        return None if value is None else validate.model_folder(value)

    @field_validator("dkim_key_file", "dkim_ed25519_key_file", "embedding_model", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        """An empty path (as in .env.example) means none: no DKIM, the bundled model."""
        return None if value == "" else value

    @field_validator("dkim_key_file", "dkim_ed25519_key_file")
    @classmethod
    def _dkim_key_readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(
                f"{value} is not a file; point it at a PEM private key, e.g. /etc/digest/dkim.pem"
            )
        return value

    @field_validator("dkim_selector", "dkim_ed25519_selector")
    @classmethod
    def _dkim_selector_given(cls, value: str, info: ValidationInfo) -> str:
        key_file = (info.field_name or "").replace("selector", "key_file")
        if info.data.get(key_file) is not None and not value:
            raise ValueError(
                f"required with {ENV_PREFIX}{key_file.upper()} (the DNS record is "
                "<selector>._domainkey.<domain>), e.g. mail2026"
            )
        if (
            key_file == "dkim_ed25519_key_file"
            and value
            and value == info.data.get("dkim_selector")
        ):
            raise ValueError(
                "must differ from DIGEST_DKIM_SELECTOR (a selector's DNS record holds one key), "
                "e.g. ed2026"
            )
        return value

    @property
    def sender_domain(self) -> str:
        """The domain of the From address: Message-IDs, List-Id and the DKIM default."""
        return self.from_address.rpartition("@")[2].strip().lower() or "localhost"

    @property
    def links_url(self) -> str:
        """Where subscribers' links point: DIGEST_PUBLIC_URL, else `digest serve`'s address."""
        return (self.public_url or f"http://{self.serve_host}:{self.serve_port}").rstrip("/")

    @property
    def web_editions(self) -> bool:
        """Whether editions are on the web for anyone to read, so messages may link to them."""
        return bool(self.public_url) and self.archive == "public"

    @property
    def template_dirs(self) -> list[Path]:
        """Where templates are looked up: the operator's DIGEST_TEMPLATES_DIR first."""
        return [p for p in (self.templates_dir, DEFAULT_TEMPLATES_DIR) if p]

    def require_secret_key(self) -> str:
        """The signing key, or ConfigError: unsubscribe links can be neither made nor checked."""
        key = self.secret_key.get_secret_value()
        if not key:
            raise ConfigError(
                "DIGEST_SECRET_KEY is not set: it signs every unsubscribe and preferences link; "
                "generate one with `digest secret` (and keep it: old links stop working if it "
                "changes)"
            )
        return key

    @property
    def effective_smtp_port(self) -> int:
        """The configured port, or the usual one for the security mode."""
        if self.smtp_port:
            return self.smtp_port
        return {"starttls": 587, "tls": 465, "none": 25}[self.smtp_security]


_LINE_BREAKS = frozenset("\r\n\x00\x0b\x0c\x85\u2028\u2029")


def one_line_setting(value: str) -> str:
    """A header setting: no line break, neither as typed nor inside an RFC 2047 encoded word
    (a mail client decodes `=?utf-8?q?=0D=0A...?=` into one, and may see a new header)."""
    decoded = value
    if "=?" in value:
        try:
            decoded = str(make_header(decode_header(value)))
        except (HeaderParseError, LookupError, UnicodeError, ValueError):
            raise ValueError(
                "has an RFC 2047 encoded word that cannot be decoded; write the text as it is"
            ) from None
    if not _LINE_BREAKS.isdisjoint(value) or not _LINE_BREAKS.isdisjoint(decoded):
        raise ValueError(
            "must be one line: remove the line break (also inside an encoded word =?...?=)"
        )
    return value


def _parse_feed_list(value: str) -> list[str]:
    """Comma-separated URLs or paths, or the path of a file listing one a line."""
    value = value.strip()
    if not value:
        return []
    if "," not in value and "://" not in value:
        listing = Path(value).expanduser()
        if listing.is_file() and listing.suffix.lower() in {".txt", ".list", ""}:
            lines = listing.read_text(encoding="utf-8").splitlines()
            return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return [part.strip() for part in value.split(",") if part.strip()]


def _parse_topics(value: str) -> dict[str, list[str]]:
    """'Name: word, two words; Other: word' into {name: keywords}."""
    topics: dict[str, list[str]] = {}
    for part in value.split(";"):
        if not part.strip():
            continue
        name, colon, words = part.partition(":")
        keywords = list(dict.fromkeys(w.strip() for w in words.split(",") if w.strip()))
        if not colon or not name.strip() or not keywords:
            raise ValueError(
                f"topic {part.strip()!r} needs a name, a colon and keywords, "
                "as in 'Climate: climate, emissions; Elections: election, ballot'"
            )
        if name.strip() in topics:
            raise ValueError(f"topic {name.strip()!r} is listed twice; merge its keywords")
        for keyword in keywords:
            if problem := topic_problem(keyword):
                raise ValueError(f"{name.strip()!r}: {problem}; give it a word to find")
        topics[name.strip()] = keywords
    return topics


_SECRET_FIELDS = {"smtp_password", "secret_key"}


def warn_unknown_settings(env_file: str | Path | None = ENV_FILE) -> None:
    """Log a warning for each DIGEST_* name that is no setting, naming the nearest one
    (`digest check` fails on them): a misspelt setting would silently keep its default."""
    for problem in unknown_settings(os.environ, Path(env_file) if env_file else None):
        log.warning("%s", problem)


def load_settings(**overrides: object) -> Settings:
    """Read settings, or raise ConfigError naming each bad variable and the fix.

    Unknown names are the caller's to report (`warn_unknown_settings`), once logs
    are set up as DIGEST_LOG_FORMAT says.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            got = (
                ""
                if field in _SECRET_FIELDS
                else f" (got {shown_value(field, err.get('input'))!r})"
            )
            lines.append(f"{ENV_PREFIX + field.upper()}: {_explain(field, err['msg'])}{got}")
        raise ConfigError("\n".join(lines)) from None


def setting_names() -> list[str]:
    """Every DIGEST_* variable the program reads."""
    return sorted(ENV_PREFIX + name.upper() for name in Settings.model_fields)


def _explain(field: str, message: str) -> str:
    info = Settings.model_fields.get(field)
    default = None if info is None or isinstance(info.default, SecretStr) else info.default
    return explain(field, message, default, ENV_PREFIX)


def unknown_settings(environ: Mapping[str, str], env_file: Path | None) -> list[str]:
    """One line per DIGEST_* name, in the environment or the .env file, that is no setting."""
    return unknown_names(environ, env_file, setting_names(), ENV_PREFIX)
