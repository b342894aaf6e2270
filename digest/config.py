"""Settings, read from DIGEST_* environment variables and a `.env` file.

Every setting is listed with its default in `.env.example`. `load_settings`
turns pydantic's validation errors into one readable line per variable, so
an operator never sees a traceback for a typo.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from digest.models import DigestError

PACKAGE_DIR = Path(__file__).resolve().parent
SAMPLE_FEEDS_DIR = PACKAGE_DIR / "sample_feeds"
# In a wheel the top-level templates/ is packaged as digest/templates; in a
# source checkout it sits beside the package.
DEFAULT_TEMPLATES_DIR = next(
    (p for p in (PACKAGE_DIR / "templates", PACKAGE_DIR.parent / "templates") if p.is_dir()),
    PACKAGE_DIR / "templates",
)

ENV_PREFIX = "DIGEST_"


class ConfigError(DigestError):
    """One or more settings are wrong; the message has one line per problem."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    # Storage and sources
    database_url: str = "sqlite:///digest.db"
    feeds: Annotated[list[str], NoDecode] = Field(default_factory=list)
    window_hours: float = Field(24, gt=0, le=24 * 31)
    timezone: str = "UTC"
    list_id: str = Field("digest", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

    # Collection
    fetch_timeout: float = Field(20, gt=0)
    fetch_concurrency: int = Field(16, ge=1, le=512)
    max_feed_bytes: int = Field(10_000_000, ge=1024)
    summary_length: int = Field(300, ge=40, le=5000)

    # Mail
    smtp_host: str = "localhost"
    smtp_port: int = Field(0, ge=0, le=65535)
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_timeout: float = Field(30, gt=0)
    from_address: str = "digest@localhost"
    from_name: str = "Morning Digest"
    subject: str = "Your morning digest, {{ date }}: {{ top_themes }}"

    # Sending: pool, pace, retries, bounces, deliverability headers and DKIM
    send_connections: int = Field(4, ge=1, le=64)
    send_messages_per_connection: int = Field(100, ge=1)
    send_rate: float = Field(0, ge=0)
    send_attempts: int = Field(5, ge=1, le=50)
    send_backoff: float = Field(2, gt=0)
    send_backoff_max: float = Field(300, gt=0)
    send_lock_timeout: float = Field(300, gt=0)
    bounce_threshold: int = Field(3, ge=1)
    list_unsubscribe_mailto: str = Field("", pattern=r"^([^\s@<>,\"]+@[^\s@<>,\"]+)?$")
    feedback_id: str = Field("", pattern=r"^[\x21-\x7e]*$")
    dkim_key_file: Path | None = None
    dkim_selector: str = Field("", pattern=r"^([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)?$")
    dkim_domain: str = Field("", pattern=r"^([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)?$")

    # Subscribers and the web app (unsubscribe, preferences)
    secret_key: SecretStr = SecretStr("")
    public_url: str = Field("http://127.0.0.1:8000", pattern=r"^https?://\S+$")
    serve_host: str = "127.0.0.1"
    serve_port: int = Field(8000, ge=1, le=65535)

    # Output
    templates_dir: Path | None = None
    output_dir: Path = Path("preview")

    @field_validator("feeds", mode="before")
    @classmethod
    def _split_feeds(cls, value: object) -> object:
        if isinstance(value, str):
            return _parse_feed_list(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'Europe/Paris'"
            ) from None
        return value

    @field_validator("templates_dir")
    @classmethod
    def _templates_dir_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{value} is not a directory")
        return value

    @field_validator("dkim_key_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        """An empty DIGEST_DKIM_KEY_FILE= (as in .env.example) means no DKIM."""
        return None if value == "" else value

    @field_validator("dkim_key_file")
    @classmethod
    def _dkim_key_readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a file; point it at a PEM private key")
        return value

    @field_validator("dkim_selector")
    @classmethod
    def _dkim_selector_given(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("dkim_key_file") is not None and not value:
            raise ValueError(
                "required with DIGEST_DKIM_KEY_FILE (the DNS record is "
                "<selector>._domainkey.<domain>)"
            )
        return value

    @property
    def sender_domain(self) -> str:
        """The domain of the From address: Message-IDs, List-Id and the DKIM default."""
        return self.from_address.rpartition("@")[2].strip().lower() or "localhost"

    @property
    def effective_smtp_port(self) -> int:
        """The configured port, or the usual one for the security mode."""
        if self.smtp_port:
            return self.smtp_port
        return {"starttls": 587, "tls": 465, "none": 25}[self.smtp_security]


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


_SECRET_FIELDS = {"smtp_password", "secret_key"}


def load_settings(**overrides: object) -> Settings:
    """Read settings, or raise ConfigError naming each bad variable and the fix."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            name = ENV_PREFIX + field.upper()
            message = err["msg"].removeprefix("Value error, ")
            shown = "" if field in _SECRET_FIELDS else f" (got {err.get('input')!r})"
            lines.append(f"{name}: {message}{shown}")
        raise ConfigError("\n".join(lines)) from None
