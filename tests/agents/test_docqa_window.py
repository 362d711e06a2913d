"""The QA budget (window.py) and the end of a looping answer (ending.py)."""
import pytest

from agents.docqa.ending import loop_start
from agents.docqa.window import default_answer_tokens, resolve_window


class Reports:
    def __init__(self, value):
        self.value, self.asked = value, 0

    def max_model_len(self):
        self.asked += 1
        return self.value


@pytest.mark.parametrize("window, answer", [(4_096, 512), (8_192, 1_024), (32_768, 4_096), (131_072, 4_096),
                                            (1_000, 256), (300, 150)])
def test_default_answer_length_is_an_eighth_of_the_window_within_bounds(window, answer):
    assert default_answer_tokens(window) == answer


def test_the_window_comes_from_the_setting_then_the_server_then_the_fallback():
    server = Reports(4_096)
    assert resolve_window(server, 16_384, None, 8_192).as_dict() == {
        "context_window": 16_384, "answer_tokens": 2_048, "source": "setting"}
    assert server.asked == 0
    served = resolve_window(server, None, None, 8_192)
    assert (served.context_window, served.answer_tokens, served.source) == (4_096, 512, "served model")
    assert served.prompt_tokens == 3_584
    silent = resolve_window(Reports(None), None, 700, 8_192)
    assert (silent.context_window, silent.answer_tokens, silent.source) == (8_192, 700, "fallback")


def test_an_answer_reserve_over_half_the_window_is_capped():
    # the old default: 4,096 answer tokens asked of a 4,096-token model
    assert resolve_window(Reports(4_096), None, 4_096, 8_192).answer_tokens == 2_048


def test_a_degenerate_loop_is_cut_after_its_first_repetition():
    answer = "The rent is 900 euros [lease.pdf, p. 2].\n"
    assert loop_start(answer + "#\n" * 99) is None  # 198 characters of loop: not yet
    text = answer + "#\n" * 100
    assert text[: loop_start(text)] == answer + "#\n"
    line = "the same line again\n"
    assert (answer + line * 12)[: loop_start(answer + line * 12)] == answer + line


def test_ordinary_text_code_and_short_repeats_are_not_loops():
    prose = " ".join(f"word{i}" for i in range(300))
    code = "\n".join(f"    x{i} = compute({i}, {i * 3})" for i in range(40))
    table = "| a | b |\n|---|---|\n" + "".join(f"| {i} | {i * i} |\n" for i in range(30))
    assert loop_start(prose) is loop_start(code) is loop_start(table) is None
    assert loop_start("=" * 150) is None
