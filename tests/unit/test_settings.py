from __future__ import annotations

from pathlib import Path

import pytest

from typogram.settings import SettingsError, load


def test_defaults_are_embedded_development() -> None:
    settings = load(env={})
    assert settings.http_port == 8000
    assert settings.ws_port == 8765
    assert settings.sql_url.startswith("sqlite:///")
    assert not settings.uses_mysql
    assert settings.redis_url == ""


def test_environment_overrides_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("http_port = 9000\n[ws]\nport = 9100\n")
    settings = load(
        config,
        env={
            "TYPOGRAM_HTTP_PORT": "9001",
            "TYPOGRAM_DATABASE_URL": "mysql://u:p@db:3306/t",
            "TYPOGRAM_DATABASE_REPLICAS": "mysql://r1/t, mysql://r2/t",
            "TYPOGRAM_LOG_JSON": "false",
        },
    )
    assert settings.http_port == 9001
    assert settings.ws_port == 9100
    assert settings.uses_mysql
    assert settings.database_replica_urls == ("mysql://r1/t", "mysql://r2/t")
    assert settings.log_json is False


@pytest.mark.parametrize("secret", ["", "change-me", "dev-secret-change-me-before-any-deployment"])
def test_placeholder_secret_refused_outside_development(secret: str) -> None:
    with pytest.raises(SettingsError, match="TYPOGRAM_JWT_SECRET"):
        load(env={"TYPOGRAM_ENVIRONMENT": "production", "TYPOGRAM_JWT_SECRET": secret})


def test_short_secret_refused_in_production() -> None:
    with pytest.raises(SettingsError, match="32"):
        load(env={"TYPOGRAM_ENVIRONMENT": "production", "TYPOGRAM_JWT_SECRET": "short-but-real"})


def test_production_with_real_secret_loads() -> None:
    settings = load(env={"TYPOGRAM_ENVIRONMENT": "production", "TYPOGRAM_JWT_SECRET": "k" * 40})
    assert not settings.is_development


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TYPOGRAM_HTTP_PORT": "eighty"}, "HTTP_PORT"),
        ({"TYPOGRAM_HTTP_PORT": "70000"}, "out of range"),
        ({"TYPOGRAM_DATABASE_URL": "postgres://x/y"}, "DATABASE_URL"),
        ({"TYPOGRAM_LOG_JSON": "perhaps"}, "LOG_JSON"),
        ({"TYPOGRAM_WS_TOKEN_CHECK_S": "0"}, "WS_TOKEN_CHECK_S"),
        ({"TYPOGRAM_WS_TOKEN_CHECK_S": "61"}, "WS_TOKEN_CHECK_S"),
        ({"TYPOGRAM_WS_SEND_BUFFER_BYTES": "-1"}, "WS_SEND_BUFFER_BYTES"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load(env=env)


def test_bad_config_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load(tmp_path / "missing.toml", env={})
    broken = tmp_path / "broken.toml"
    broken.write_text("http_port = = 1")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load(broken, env={})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("no_such_setting = 1")
    with pytest.raises(SettingsError, match="unknown setting"):
        load(unknown, env={})


def test_shipped_configs_parse() -> None:
    root = Path(__file__).parents[2] / "configs"
    assert load(root / "default.toml", env={}).sql_url.startswith("sqlite")
    production = load(
        root / "production.toml",
        env={
            "TYPOGRAM_JWT_SECRET": "p" * 40,
            "TYPOGRAM_PAYMENTS_WEBHOOK_SECRET": "whsec_" + "w" * 32,
            "TYPOGRAM_PAYMENTS_STRIPE_API_KEY": "sk_live_" + "k" * 24,
        },
    )
    assert production.uses_mysql
    assert len(production.database_replica_urls) == 2


def test_metrics_listen_on_loopback_by_default() -> None:
    settings = load(env={})
    assert (settings.metrics_host, settings.metrics_port, settings.metrics_token) == (
        "127.0.0.1",
        9464,
        "",
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "metrics.internal"])
def test_metrics_off_loopback_need_a_token(host: str) -> None:
    with pytest.raises(SettingsError, match="TYPOGRAM_METRICS_TOKEN"):
        load(env={"TYPOGRAM_METRICS_HOST": host})
    settings = load(env={"TYPOGRAM_METRICS_HOST": host, "TYPOGRAM_METRICS_TOKEN": "t" * 32})
    assert settings.metrics_host == host
    with pytest.raises(SettingsError, match="at least 16"):
        load(env={"TYPOGRAM_METRICS_TOKEN": "short"})
    with pytest.raises(SettingsError, match="must differ"):
        load(env={"TYPOGRAM_METRICS_PORT": "8000"})
    assert load(env={"TYPOGRAM_METRICS_PORT": "0", "TYPOGRAM_HTTP_PORT": "0"}).metrics_port == 0


def test_trusted_proxies_and_password_score_are_checked() -> None:
    settings = load(env={"TYPOGRAM_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1"})
    assert settings.trusted_proxies == ("10.0.0.0/8", "192.168.1.1")
    with pytest.raises(SettingsError, match="TYPOGRAM_TRUSTED_PROXIES"):
        load(env={"TYPOGRAM_TRUSTED_PROXIES": "10.0.0.0/8,proxy.example"})
    with pytest.raises(SettingsError, match="PASSWORD_MIN_SCORE"):
        load(env={"TYPOGRAM_PASSWORD_MIN_SCORE": "5"})
