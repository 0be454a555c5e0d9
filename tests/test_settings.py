"""resolve(): options and environment validated before any request, the token resolved once."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from conftest import SettingsFactory
from hfharvest.errors import OfflineError, UsageError
from hfharvest.settings import Settings


def token(settings: Settings) -> str | None:
    return settings.transport.token.value if settings.transport.token else None


def test_defaults(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    assert settings.query.sorts == ("likes", "downloads")
    assert settings.query.full is True
    assert settings.query.page_size == 1000
    assert settings.query.limit is None
    assert settings.query.repo_type == "model"
    assert settings.output.path is None
    assert settings.output.format == "jsonl"
    assert settings.transport.timeout == 30
    assert settings.transport.retry.retries == 5
    assert settings.transport.retry.max_wait is None  # one rate-limit window: 301 s on the Hub
    assert settings.transport.retry.page_deadline == 600
    assert settings.transport.retry.backoff_base == 0  # from HFHARVEST_BACKOFF_BASE in the test env


def test_snake_case_sorts_are_mapped_and_repeats_dropped(make_settings: SettingsFactory) -> None:
    settings = make_settings(
        sort=("trending_score", "created_at", "last_modified", "likes_30d", "trendingScore", "id")
    )
    assert settings.query.sorts == ("trendingScore", "createdAt", "lastModified", "likes30d", "id")


def test_an_unknown_sort_is_sent_as_given_with_a_word(
    make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The Hub adds sorts: one hfharvest does not know goes out as given (aliases still mapped)."""
    settings = make_settings(sort=("popularity", "trending_score"))
    assert settings.query.sorts == ("popularity", "trendingScore")
    assert "`sort` popularity is not a sort hfharvest knows (likes, downloads" in caplog.text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"page_size": 0}, "`page_size` must be between 1 and 1000, not 0"),
        ({"page_size": 5000}, "`page_size` must be between 1 and 1000, not 5000"),
        ({"limit": -1}, "`limit` must be at least 1"),
        ({"limit": 0}, "`limit` must be at least 1"),
        ({"timeout": 0}, "`timeout` must be more than 0"),
        ({"retries": -1}, "`retries` must be 0 or more"),
        ({"max_wait": -5}, "`max_wait` must be 0 or more"),
        ({"full": True, "expand": ("sha",)}, "`full` cannot be combined with `expand`"),
        ({"repo_type": "paper"}, "`repo_type` must be model, dataset or space"),
        ({"repo_type": "dataset", "pipeline_tag": "x"}, "`pipeline_tag` only applies"),
        ({"endpoint": "ftp://hub"}, "`endpoint` must be an http"),
        ({"endpoint": "huggingface.co"}, "`endpoint` must be an http"),
        ({"format": "csv"}, "`format` must be json, jsonl or parquet"),
    ],
)
def test_bad_options_name_the_option(
    make_settings: SettingsFactory, options: dict[str, object], message: str
) -> None:
    """In Python's terms: the parameter, in backquotes and as a field (the CLI shows flags)."""
    with pytest.raises(UsageError, match=message) as err:
        make_settings(**options)
    assert err.value.parameter == message.split("`")[1]
    assert err.value.value == options[err.value.parameter]


def test_expand_implies_no_full(make_settings: SettingsFactory) -> None:
    assert make_settings(expand=("sha",)).query.full is False
    assert make_settings(full=False).query.full is False


def test_offline_mode_refuses(make_settings: SettingsFactory) -> None:
    with pytest.raises(OfflineError, match="HF_HUB_OFFLINE") as err:
        make_settings(environ={"HF_HUB_OFFLINE": "1"})
    assert err.value.exit_code == 2


def test_endpoint_from_environment_trailing_slash_stripped(make_settings: SettingsFactory) -> None:
    settings = make_settings(endpoint=None, environ={"HF_ENDPOINT": "http://127.0.0.1:9/"})
    assert settings.transport.endpoint == "http://127.0.0.1:9"
    assert make_settings(endpoint=None).transport.endpoint == "https://huggingface.co"


class TestToken:
    def test_order_flag_then_file_then_env_then_token_file(
        self, make_settings: SettingsFactory, tmp_path: Path
    ) -> None:
        token_file = tmp_path / "tok"
        token_file.write_text("from-file\n")
        home = tmp_path / "hf"
        home.mkdir()
        (home / "token").write_text("from-home")
        env = {"HF_TOKEN": "from-env", "HF_HOME": str(home)}
        assert token(make_settings(token="flag", environ=env)) == "flag"
        assert token(make_settings(token_file=token_file, environ=env)) == "from-file"
        assert token(make_settings(token=None, environ=env)) == "from-env"
        legacy = {"HUGGING_FACE_HUB_TOKEN": "legacy", "HF_HOME": str(home)}
        assert token(make_settings(token=None, environ=legacy)) == "legacy"
        assert token(make_settings(token=None, environ={"HF_HOME": str(home)})) == "from-home"
        env_path = {"HF_TOKEN_PATH": str(token_file), "HF_HOME": str(home)}
        assert token(make_settings(token=None, environ=env_path)) == "from-file"
        assert token(make_settings(token=False, environ=env)) is None

    def test_default_token_file_under_home(
        self, make_settings: SettingsFactory, tmp_path: Path
    ) -> None:
        cache = tmp_path / ".cache" / "huggingface"
        cache.mkdir(parents=True)
        (cache / "token").write_text("hf_home_default")
        settings = make_settings(token=None, environ={"HOME": str(tmp_path)})
        assert token(settings) == "hf_home_default"
        assert "hf_home_default" not in repr(settings)

    def test_missing_token_file_is_a_usage_error(
        self, make_settings: SettingsFactory, tmp_path: Path
    ) -> None:
        with pytest.raises(UsageError, match=r"`token_file`: cannot read"):
            make_settings(token_file=tmp_path / "absent")

    @pytest.mark.parametrize("endpoint", ["http://mirror.example", "http://10.1.2.3:8080"])
    def test_clear_text_token_to_another_host_is_refused(
        self, make_settings: SettingsFactory, endpoint: str
    ) -> None:
        with pytest.raises(UsageError, match="clear text") as err:
            make_settings(endpoint=endpoint, token="hf_secret")
        assert "`allow_insecure_token`" in (err.value.hint or "")
        assert "hf_secret" not in str(err.value)
        allowed = make_settings(endpoint=endpoint, token="hf_secret", allow_insecure_token=True)
        assert token(allowed) == "hf_secret"

    @pytest.mark.parametrize(
        "endpoint", ["http://127.0.0.1:8080", "http://localhost", "http://[::1]:9"]
    )
    def test_loopback_and_https_are_fine(
        self, make_settings: SettingsFactory, endpoint: str
    ) -> None:
        assert token(make_settings(endpoint=endpoint, token="t")) == "t"


class TestOutput:
    @pytest.mark.parametrize(
        ("name", "fmt", "gzip"),
        [
            ("a.jsonl", "jsonl", False),
            ("a.json", "json", False),
            ("a.json.gz", "json", True),
            ("a.jsonl.gz", "jsonl", True),
            ("a.ndjson", "jsonl", False),
            ("snapshot", "jsonl", False),
        ],
    )
    def test_format_from_suffix(
        self, make_settings: SettingsFactory, tmp_path: Path, name: str, fmt: str, gzip: bool
    ) -> None:
        output = make_settings(output=str(tmp_path / name)).output
        assert (output.format, output.gzip) == (fmt, gzip)

    def test_explicit_format_wins(self, make_settings: SettingsFactory, tmp_path: Path) -> None:
        assert (
            make_settings(output=str(tmp_path / "a.jsonl"), format="json").output.format == "json"
        )
        assert make_settings(format="json").output.format == "json"

    def test_missing_folders_are_created(
        self, make_settings: SettingsFactory, tmp_path: Path
    ) -> None:
        make_settings(output=str(tmp_path / "snapshots" / "daily" / "a.jsonl"))
        assert (tmp_path / "snapshots" / "daily").is_dir()

    def test_output_that_is_a_folder(self, make_settings: SettingsFactory, tmp_path: Path) -> None:
        with pytest.raises(UsageError, match="is a folder"):
            make_settings(output=str(tmp_path))

    def test_unwritable_folder(self, make_settings: SettingsFactory, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("")
        with pytest.raises(UsageError, match="is not a folder") as err:
            make_settings(output=str(blocker / "out.jsonl"))
        assert err.value.exit_code == 2


def test_the_job_is_every_query_field_with_the_endpoint_and_the_output(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    template = str(tmp_path / "models-{date}.jsonl")
    settings = make_settings(output=template, author="google", raw=True)
    job = settings.job()
    assert job == {
        "endpoint": settings.transport.endpoint,
        **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings.query).items()},
        "output": template,  # the template: tomorrow's {date} is the same job
        "format": "jsonl",
        "raw": True,
    }
    assert job["author"] == "google"
    assert "token" not in str(job)
