"""A worker trusts its local tables only after a clean stop (no broker)."""

from humidity.plumbing.local_tables import CLEAN_STOP_MARK, mark_clean_stop, trust_or_discard


def a_store(tabledir):
    store = tabledir / "humidity-ingest-totals-0.db"
    store.mkdir(parents=True)
    (store / "000001.log").write_bytes(b"written before the changelog got it")
    return store


def test_tables_left_without_the_clean_stop_mark_are_discarded(tmp_path):
    tabledir = tmp_path / "tables"
    a_store(tabledir)
    assert trust_or_discard(tabledir) is False
    assert tabledir.is_dir() and list(tabledir.iterdir()) == []


def test_tables_of_a_clean_stop_are_kept_and_the_mark_is_used_once(tmp_path):
    tabledir = tmp_path / "tables"
    store = a_store(tabledir)
    mark_clean_stop(tabledir)
    assert trust_or_discard(tabledir) is True
    assert store.exists() and not (tabledir / CLEAN_STOP_MARK).exists()
    # the worker that started on them dies: the next start finds no mark
    assert trust_or_discard(tabledir) is False
    assert not store.exists()


def test_a_first_start_has_nothing_to_discard(tmp_path):
    assert trust_or_discard(tmp_path / "tables") is True
    (tmp_path / "tables").mkdir()
    assert trust_or_discard(tmp_path / "tables") is True
