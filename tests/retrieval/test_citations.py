"""Citation parsing and matching for sections and line ranges."""
from tools.retrieval.citations import check_citations
from tools.retrieval.context import Passage


def _passage(section: str, filename: str = "guide.md") -> Passage:
    return Passage("d", filename, None, section, "text", ("d:1",))


def test_sections_match_by_full_path_or_last_heading() -> None:
    passages = [_passage("Guide > Install")]
    found = check_citations("[guide.md, § Install] [Guide.MD, § guide > install] [guide.md, § Uninstall]", passages)
    assert [c.exists for c in found] == [True, True, False]


def test_line_ranges_match_when_they_overlap() -> None:
    passages = [_passage("lines 10-40", "main.py")]
    found = check_citations("[main.py, lines 12-14] [main.py, lines 41-50] [main.py, lines 1-10]", passages)
    assert [c.exists for c in found] == [True, False, True]


def test_repeated_citations_are_reported_once_and_plain_brackets_ignored() -> None:
    found = check_citations("a [main.py, lines 1-2] b [main.py, lines 1-2] c [1] [note]", [_passage("lines 1-5", "main.py")])
    assert len(found) == 1
