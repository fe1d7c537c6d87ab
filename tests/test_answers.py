"""The answer parser: free text -> one option or None, on adversarial model outputs."""

from __future__ import annotations

import pytest

from dvmap.answers import parse_answer, reward_answer_text, strict_answer_text
from dvmap.errors import DvmapError

# --------------------------------------------------------------------------------------------------------------
# Fixtures: option lists where options contain each other
# --------------------------------------------------------------------------------------------------------------

AGREE = ["Agree strongly", "Agree", "Neither agree nor disagree", "Disagree", "Disagree strongly"]
# the same options with the short ones first, so that a parser that takes the first substring hit goes wrong
AGREE_SHORT_FIRST = ["Agree", "Agree strongly", "Disagree", "Disagree strongly", "Neither agree nor disagree"]
IMPORTANT = ["Very important", "Rather important", "Not very important", "Not at all important"]


@pytest.fixture(params=[AGREE, AGREE_SHORT_FIRST], ids=["long-first", "short-first"])
def agree(request) -> list[str]:
    return request.param


# --------------------------------------------------------------------------------------------------------------
# Tags
# --------------------------------------------------------------------------------------------------------------

def test_last_answer_tag_wins(agree):
    output = "<answer>Agree</answer> On reflection, no. <answer>Disagree strongly</answer>"
    assert parse_answer(output, agree) == "Disagree strongly"
    assert parse_answer("<answer>Disagree</answer>\n<answer>Agree</answer>", agree) == "Agree"


def test_tag_beats_options_mentioned_in_the_reasoning(agree):
    output = "Some would disagree, others would say neither agree nor disagree.\n<answer>Agree strongly</answer>"
    assert parse_answer(output, agree) == "Agree strongly"


def test_empty_last_tag_is_unparseable_even_after_a_filled_one(agree):
    assert parse_answer("<answer>Agree</answer> <answer></answer>", agree) is None


@pytest.mark.parametrize("output", ["<answer></answer>", "<answer>   </answer>", "<answer>\n\t \n</answer>",
                                    "<answer>.</answer>", "", "   "])
def test_empty_answers_are_unparseable(output, agree):
    assert parse_answer(output, agree) is None


def test_none_output_is_unparseable(agree):
    assert parse_answer(None, agree) is None


@pytest.mark.parametrize("output", ["<ANSWER>Agree strongly</ANSWER>", "<Answer>agree strongly</answer>",
                                    "<aNsWeR> AGREE STRONGLY </AnSwEr>"])
def test_tags_are_case_insensitive(output, agree):
    assert parse_answer(output, agree) == "Agree strongly"


def test_multiline_tag_content(agree):
    assert parse_answer("<answer>\n  Neither agree\n   nor disagree\n</answer>", agree) == "Neither agree nor disagree"
    assert parse_answer("<answer>\nAgree\nstrongly\n</answer>", agree) == "Agree strongly"
    reasoning = "Line one.\nLine two.\n<answer>\nI would\nsay: disagree.\n</answer>\n"
    assert parse_answer(reasoning, agree) == "Disagree"


# --------------------------------------------------------------------------------------------------------------
# Exact options after normalisation
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("Agree strongly", "Agree strongly"),
    ("  agree   STRONGLY ", "Agree strongly"),
    ("Agree\u00a0strongly", "Agree strongly"),
    ("agree", "Agree"),
    ("DISAGREE", "Disagree"),
    ("Disagree strongly.", "Disagree strongly"),
    ("neither agree nor disagree!", "Neither agree nor disagree"),
])
def test_exact_option_after_normalisation(text, expected, agree):
    assert parse_answer(f"<answer>{text}</answer>", agree) == expected


def test_returns_the_option_as_given_not_the_normalised_text(agree):
    result = parse_answer("<answer>aGrEe StRoNgLy</answer>", agree)
    assert result == "Agree strongly" and result in agree


def test_no_tag_with_an_exact_option(agree):
    assert parse_answer("Agree strongly", agree) == "Agree strongly"
    assert parse_answer("  disagree \n", agree) == "Disagree"
    assert parse_answer("Neither agree nor disagree.", agree) == "Neither agree nor disagree"


def test_no_tag_with_free_text_mentioning_one_option(agree):
    assert parse_answer("The answer is: Disagree strongly.", agree) == "Disagree strongly"


def test_final_punctuation(agree):
    assert parse_answer("<answer>Very important.</answer>", IMPORTANT) == "Very important"
    assert parse_answer("Very important.", IMPORTANT) == "Very important"
    assert parse_answer("<answer>Not very important!</answer>", IMPORTANT) == "Not very important"
    assert parse_answer("<answer>I think: rather important;</answer>", IMPORTANT) == "Rather important"


def test_option_text_with_final_punctuation():
    options = ["Very important.", "Rather important.", "Not very important.", "Not at all important."]
    assert parse_answer("<answer>very important</answer>", options) == "Very important."
    assert parse_answer("<answer>Not very important.</answer>", options) == "Not very important."
    assert parse_answer("It is rather important to me", options) == "Rather important."


# --------------------------------------------------------------------------------------------------------------
# Options that contain each other
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("I agree", "Agree"),
    ("I disagree", "Disagree"),
    ("I disagree strongly", "Disagree strongly"),
    ("I agree strongly", "Agree strongly"),
    ("I neither agree nor disagree", "Neither agree nor disagree"),
    ("**Agree strongly**", "Agree strongly"),
    ('"Disagree"', "Disagree"),
    ("Agree, I agree.", "Agree"),  # the same option twice is still one option
])
def test_answer_containing_exactly_one_option(text, expected, agree):
    assert parse_answer(f"<answer>{text}</answer>", agree) == expected


@pytest.mark.parametrize("text", [
    "agree or disagree",
    "Agree strongly or disagree strongly",
    "I agree, and then again I disagree",
    "agree strongly, or just agree",
])
def test_answer_mentioning_two_options_is_unparseable(text, agree):
    assert parse_answer(f"<answer>{text}</answer>", agree) is None


def test_disagree_is_not_read_as_agree(agree):
    for text in ["disagree", "I disagree", "I DISAGREE.", "Disagree!"]:
        assert parse_answer(f"<answer>{text}</answer>", agree) == "Disagree", text


def test_contained_options_in_importance_scale():
    assert parse_answer("<answer>not very important</answer>", IMPORTANT) == "Not very important"
    assert parse_answer("<answer>For me it is not very important</answer>", IMPORTANT) == "Not very important"
    assert parse_answer("<answer>very important</answer>", IMPORTANT) == "Very important"
    assert parse_answer("<answer>very important or not at all important</answer>", IMPORTANT) is None


def test_no_option_mentioned_is_unparseable(agree):
    assert parse_answer("<answer>I am not sure</answer>", agree) is None
    assert parse_answer("<answer>agreeable</answer>", agree) is None  # whole words only
    assert parse_answer("<answer>strongly</answer>", agree) is None


def test_case_insensitive_tag_overrides_the_reasoning(agree):
    # read as a tag, the answer is Agree; read as untagged text it would mention two options
    assert parse_answer("I do not disagree.\n<ANSWER>Agree</ANSWER>", agree) == "Agree"
    assert parse_answer("Agree? No.\n<Answer>\nDisagree\n</ANSWER>", agree) == "Disagree"


@pytest.mark.parametrize("text", ["Casino", "Eyes", "Nobody knows", "nonetheless"])
def test_options_inside_other_words_do_not_count(text):
    assert parse_answer(f"<answer>{text}</answer>", ["Yes", "No"]) is None


def test_yes_no_whole_words():
    assert parse_answer("<answer>Yes, I think so</answer>", ["Yes", "No"]) == "Yes"
    assert parse_answer("<answer>no.</answer>", ["Yes", "No"]) == "No"
    assert parse_answer("<answer>yes and no</answer>", ["Yes", "No"]) is None


# --------------------------------------------------------------------------------------------------------------
# DVMap's released extractions: the evaluation's (strict protocol) and the rewards'
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("output, expected", [
    ("<answer>Agree</answer>", "Agree"),
    ("<reasoning>r</reasoning>\n<answer>\n  Agree strongly \n</answer>\n", "Agree strongly"),
    ("<answer>Agree</answer> then <answer>Disagree</answer>", "Disagree"),          # the last <answer>
    ("</answer> <answer>Agree</answer>", "Agree"),
    ("<answer>Agree</answer> tail </answer>", "Agree"),
    ("<answer>Agree</answer>" + "x" * 1000, "Agree"),                               # no clipping
    ("<answer>...</answer>", "..."),                                               # no placeholder rule
    ("<answer>Agree</answer> <answer>Disagree", None),  # after the last <answer> there is no </answer>
    ("<answer></answer>", None),
    ("<answer> \n </answer>", None),
    ("<ANSWER>Agree</ANSWER>", None),                                                # case-sensitive tags
    ("Agree", None),
    ("", None),
    (None, None),
])
def test_strict_answer_text(output, expected):
    assert strict_answer_text(output) == expected


@pytest.mark.parametrize("output, expected", [
    ("<answer>Agree</answer>", "Agree"),
    ("<answer> Agree strongly </answer>", "Agree strongly"),       # exact beats the substring "Agree"
    ("<answer>I Agree.</answer>", "Agree"),                        # the one option inside
    ("<answer>I Disagree</answer>", "Disagree"),                   # "Agree" is not inside "Disagree"
    ("<answer>I Agree strongly</answer>", None),                   # "Agree" and "Agree strongly" inside
    ("<answer>Agree or Disagree</answer>", None),
    ("<answer>agree</answer>", None),                              # case-sensitive
    ("<answer>AGREE STRONGLY</answer>", None),
    ("<answer>Agree.</answer> <answer>Neither agree nor disagree</answer>", "Neither agree nor disagree"),
    ("<answer>Agree</answer> <answer>Disagree", None),
    ("Agree", None),                                               # no tags
    (None, None),
])
def test_strict_protocol(output, expected, agree):
    assert parse_answer(output, agree, protocol="strict") == expected


def test_strict_and_lenient_differ():
    assert parse_answer("<answer>agree</answer>", AGREE, protocol="lenient") == "Agree"
    assert parse_answer("<answer>agree</answer>", AGREE, protocol="strict") is None
    assert parse_answer("<answer>For me it is Not very important</answer>", IMPORTANT, "strict") == "Not very important"
    assert parse_answer("<answer>Very important!</answer>", IMPORTANT, "strict") == "Very important"
    assert parse_answer("<answer>Very important or Not at all important</answer>", IMPORTANT, "strict") is None
    with pytest.raises(DvmapError, match="evaluation.protocol: unknown protocol 'loose'"):
        parse_answer("<answer>Agree</answer>", AGREE, protocol="loose")


@pytest.mark.parametrize("output, expected", [
    ("<answer>Agree</answer>", "Agree"),
    ("<answer>\n Agree strongly\n</answer>", "Agree strongly"),
    ("<answer>Agree</answer> then <answer>Disagree</answer>", "Disagree"),      # the last pair
    ("<answer>Agree</answer> <answer>Disagree", "Agree"),                        # the last complete pair
    ("<answer>Agree</answer>" + "x" * 278, "Agree"),                              # 300 characters
    ("<answer>Agree</answer>" + "x" * 279, None),                                 # 301: "<" falls outside
    ("y" * 1000 + "<answer>Agree</answer>", "Agree"),
    ("<answer>...</answer>", None),
    ("<answer> ... </answer>", None),
    ("<answer>....</answer>", "...."),
    ("<answer></answer>", None),
    ("<Answer>Agree</Answer>", None),                                             # case-sensitive tags
    ("Agree", None),
])
def test_reward_answer_text(output, expected):
    assert reward_answer_text(output) == expected
