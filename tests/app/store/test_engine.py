import pytest

from app.store.engine import async_url, check_schema_name, make_engines


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///data/spangate.db", "sqlite+aiosqlite:///data/spangate.db"),
        ("sqlite:////abs/spangate.db", "sqlite+aiosqlite:////abs/spangate.db"),
        ("spangate.db", "sqlite+aiosqlite:///spangate.db"),
        ("/var/lib/spangate/store.db", "sqlite+aiosqlite:////var/lib/spangate/store.db"),
        ("postgresql://u@db:5432/gw", "postgresql+asyncpg://u@db:5432/gw"),
        ("postgres://u@db/gw", "postgresql+asyncpg://u@db/gw"),
        ("postgresql+asyncpg://u@db/gw", "postgresql+asyncpg://u@db/gw"),
    ],
)
def test_urls_map_to_async_drivers(given, expected):
    assert async_url(given).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize("given", ["sqlite://", "sqlite:///:memory:", ":memory:"])
def test_memory_databases_are_refused(given):
    with pytest.raises(ValueError, match="file path"):
        async_url(given)


@pytest.mark.parametrize("given", ["my-bad-url", "spangate"])
def test_a_bare_word_is_refused_not_taken_for_a_new_sqlite_file(given):
    with pytest.raises(ValueError, match="neither a database URL nor a file path: use sqlite:///"):
        async_url(given)


def test_unknown_scheme_is_refused_naming_what_works():
    with pytest.raises(ValueError, match="postgresql://") as info:
        async_url("mysql://root:hunter2@db/gw")
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("name", ["spangate", "spangate_test_0a1b", "_x"])
def test_plain_schema_names_pass(name):
    assert check_schema_name(name) == name


@pytest.mark.parametrize("name", ["", "Spangate", "1abc", 'a"; drop schema public; --', "a" * 64])
def test_other_schema_names_are_refused(name):
    with pytest.raises(ValueError, match="schema name"):
        check_schema_name(name)


def test_schema_option_is_refused_for_sqlite(tmp_path):
    with pytest.raises(ValueError, match="PostgreSQL"):
        make_engines(str(tmp_path / "s.db"), schema="x")
