"""Numbers and codes said in calls (lexical.py): how they are read from text, and the catalogue's
code table kept in step with its windows."""
import sqlite3

import pytest

from speechsearch.catalog import Catalog
from speechsearch.lexical import code_runs, query_codes, spoken_numbers
from speechsearch.types import Window


@pytest.mark.parametrize("text, expected", [
    ("four thousand pictures", "4000 pictures"),
    ("eighty seven pounds", "87 pounds"),
    ("three hundred and twenty dogs", "320 dogs"),
    ("one hundred and the dog", "100 and the dog"),
    ("thirty six fifty", "36 50"),
    ("three eight nine one five", "3 8 9 1 5"),
    ("fifty-five", "55"),
    ("the twenty first of June", "the 21st of june"),
    ("flights on the twelfth", "flights on the 12th"),
    ("no numbers here", "no numbers here"),
])
def test_number_words_read_as_digits(text, expected):
    assert spoken_numbers(text) == expected


@pytest.mark.parametrize("text, code", [
    ("It's 770-0941-358 and I was born in 1992.", "7700941358"),
    ("Number 4, 829 and the 19th", "4829"),
    ("It's 3-8-9-1-5. And the post code", "38915"),
    ("the card ends 205-8. Thank you", "2058"),
    ("CF10, 3RH", "cf103rh"),
    ("order number four seven two nine one", "47291"),
    ("that's £36.50 a month", "3650"),
])
def test_a_number_read_out_in_groups_is_one_code(text, code):
    assert code in code_runs(text)


def test_query_codes_are_lookups_not_small_numbers():
    assert query_codes("card ending 2058") == ["2058"]
    assert query_codes("postcode SO15 2LT") == ["so152lt"]
    assert query_codes("two adults on the 12th") == []  # too short to be an identifier
    assert query_codes("bill thirty six fifty") == ["3650"]


def _windows(*texts):
    return [Window(10.0 * i, 10.0 * i + 12, t) for i, t in enumerate(texts)]


def test_catalog_finds_any_part_of_a_code_and_forgets_removed_windows(tmp_path):
    cat = Catalog(tmp_path / "catalog.sqlite3")
    for path, texts in {"/a.wav": ("hello there", "my mobile is 770-0941-358", "bye"),
                        "/b.wav": ("account CB55721 please", "the order is 4, 829")}.items():
        cat.begin_file(path, "h" + path)
        cat.finish_file(path, "h" + path, duration=30, ids=[f"{path}-{i}" for i in range(len(texts))],
                        windows=_windows(*texts), language="en", models={}, metadata={}, warnings=[],
                        transcript=[])
    assert cat.codes("mobile ending 941358", 10) == {"/a.wav-1": 1.0}
    assert cat.codes("order 4829", 10) == {"/b.wav-1": 1.0}
    assert cat.codes("account BB55721", 10) == {"/b.wav-0": pytest.approx(0.8)}  # digits heard, letter not
    assert cat.codes("order 4829 account CB55721", 10) == {"/b.wav-1": 0.5, "/b.wav-0": 0.5}
    assert cat.codes("refund please", 10) == {}
    cat.remove_file("/a.wav")
    assert cat.codes("mobile ending 941358", 10) == {}
    cat.begin_file("/b.wav", "h2")  # re-indexing drops the old windows' codes
    assert cat.codes("order 4829", 10) == {}
    cat.close()


def test_an_index_made_before_codes_gets_them_when_opened(tmp_path):
    db_path = tmp_path / "catalog.sqlite3"
    cat = Catalog(db_path)
    cat.begin_file("/a.wav", "h")
    cat.finish_file("/a.wav", "h", duration=12, ids=["a-0"], windows=_windows("order 61304 please"),
                    language="en", models={}, metadata={}, warnings=[], transcript=[])
    cat.close()
    db = sqlite3.connect(db_path)  # what an index of schema 4 looks like
    db.executescript("DROP TRIGGER window_codes_delete; DROP TABLE window_codes;"
                     "UPDATE meta SET value='4' WHERE key='schema_version';")
    db.commit()
    db.close()
    cat = Catalog(db_path)
    assert cat.codes("order 61304", 10) == {"a-0": 1.0}
    assert cat.get_meta("schema_version") == "5"
    cat.close()
