"""labelwise.text: keyword highlighting, with hand-computed expected values."""

from __future__ import annotations

import math

import pytest

from labelwise.text import plain_text, term_idf, top_terms


def test_plain_text():
    assert plain_text("Great<br />GUM") == "great gum"
    assert plain_text("x < y") == "x < y"  # no closing bracket: not a tag


def test_term_idf_hand_computed():
    # smooth idf: 1 + ln((1 + n_texts) / (1 + df)); "the" is an English stop word
    idf = term_idf(["sugar gum", "the sugar"])
    assert idf == pytest.approx({"gum": 1 + math.log(3 / 2), "sugar": 1.0})


def test_term_idf_of_nothing_or_only_stop_words():
    assert term_idf([]) == {}
    assert term_idf(["the and of", "a"]) == {}


def test_top_terms_ranks_by_tf_times_idf():
    idf = {"sugar": 1.0, "gum": 2.5, "taste": 1.2}
    # tf x idf: sugar 3 x 1.0 = 3.0, gum 1 x 2.5, taste 2 x 1.2 = 2.4; "the" is a stop word
    text = "Sugar, sugar and the gum: the sugar taste, taste"
    assert top_terms(text, idf) == ["sugar", "gum", "taste"]
    assert top_terms(text, idf, k=1) == ["sugar"]


def test_top_terms_ties_keep_first_occurrence_and_ignore_tags():
    assert top_terms("beta alpha", {"alpha": 1.0, "beta": 1.0}) == ["beta", "alpha"]
    assert top_terms("great<br />gum", {"br": 9.0, "gum": 1.0, "great": 0.5}) == ["gum", "great"]
    assert top_terms("the and of", {"sugar": 1.0}) == []


def test_pages_reexports_top_terms():
    from labelwise.service import pages

    assert pages.top_terms is top_terms
