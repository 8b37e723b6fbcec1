"""The official VQA answer normalisation (`vqaEval.py` of the VQA evaluation tool, Agrawal et al.) and EvalAI's
answer processor built on it (`evalai_answer`).

Reproduced rule for rule, quirks included, so scores compare with the published tables:

- `process_punctuation`: when the text has a comma between digits ("1,000"), or a punctuation mark next to a
  space, that mark is deleted; otherwise it becomes a space ("black/white" -> "black white"). Periods are
  deleted unless a digit follows ("2.5" keeps its point). Colons and apostrophes are not punctuation here.
- `process_digit_article`: lower case, number words zero..ten (and "none") -> digits, articles a/an/the
  dropped, missing apostrophes of contractions put back ("dont" -> "don't").
"""

from __future__ import annotations

import re

CONTRACTIONS: dict[str, str] = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's",
    "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll",
    "let's": "let's", "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't", "mustve": "must've",
    "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't",
    "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't",
    "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
    "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're",
    "theres": "there's", "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've",
    "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't",
    "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll",
    "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've",
    "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're",
    "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",
}
"""The tool's map, verbatim: its capitalised keys never match (words are lower-cased first) and
"somebody'd" maps to "somebodyd"; both are kept so that scores match the official ones."""

NUMBER_WORDS: dict[str, str] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}
"""The tool's `manualMap`."""

ARTICLES: frozenset[str] = frozenset({"a", "an", "the"})
PUNCTUATION: tuple[str, ...] = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-",
                                ">", "<", "@", "`", ",", "?", "!")

# The tool's pattern verbatim: `(?!<=\d)` was meant as the look-behind `(?<!\d)` but is a look-ahead that
# always holds, so in effect a period is removed unless a digit follows it ("5." -> "5", "2.5" stays).
_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_IN_NUMBER = re.compile(r"(\d)(\,)(\d)")
_PERIOD_SUB_COUNT = int(re.UNICODE)
"""The tool calls `periodStrip.sub("", text, re.UNICODE)`, whose third argument is the count: at most 32
periods are removed. Only answers with more than 32 periods notice."""


def process_punctuation(text: str) -> str:
    """`processPunctuation`: delete or space out punctuation marks, then strip periods (see module doc)."""
    out = text
    delete_all = _COMMA_IN_NUMBER.search(text) is not None
    for mark in PUNCTUATION:
        # The conditions look at the original text, not the partly processed one, as the tool does.
        if delete_all or f"{mark} " in text or f" {mark}" in text:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD.sub("", out, count=_PERIOD_SUB_COUNT)


def process_digit_article(text: str) -> str:
    """`processDigitArticle`: lower case, number words -> digits, no articles, contractions repaired."""
    words = [NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    return " ".join(CONTRACTIONS.get(w, w) for w in words if w not in ARTICLES)


def clean_whitespace(text: str) -> str:
    """The tool's first step on every answer: newlines and tabs become spaces, ends stripped."""
    return text.replace("\n", " ").replace("\t", " ").strip()


def normalize_answer(text: str) -> str:
    """The full normalisation of one answer: "The two dogs." -> "2 dogs", "Dont" -> "don't"."""
    return process_digit_article(process_punctuation(clean_whitespace(text)))


def evalai_answer(text: str) -> str:
    """EvalAI's answer processor (`EvalAIAnswerProcessor` in LLaVA's `m4c_evaluator.py`, from MMF): what LLaVA's
    TextVQA evaluator applies to both sides and its VizWiz and VQAv2 submission scripts apply to every answer.

    It is `normalize_answer` behind one more first step (its `word_tokenize`): lower case, commas and question
    marks deleted, "'s" split off as " 's" ("player's" -> "player 's"). Commas being gone, the tool's
    digit-comma-digit rule never fires here: "1,000" -> "1000" either way. Maps, punctuation list and period
    rule are the same (checked against m4c_evaluator's copies).
    """
    return normalize_answer(text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip())
