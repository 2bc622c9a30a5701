"""Words that never appear in generated lyrics: kept out of the lexicon the decoder picks
from, out of the language model's vocabulary (they read as unknown) and checked again on
every finished line."""

from __future__ import annotations

BLOCKED_ENGLISH = frozenset(
    {
        "arse",
        "ass",
        "asshole",
        "bastard",
        "bitch",
        "bitches",
        "bloody",
        "bollocks",
        "boob",
        "boobs",
        "bugger",
        "butt",
        "cock",
        "cocks",
        "crap",
        "cunt",
        "damn",
        "damned",
        "dick",
        "dildo",
        "dyke",
        "fag",
        "faggot",
        "fuck",
        "fucked",
        "fucker",
        "fucking",
        "fucks",
        "goddamn",
        "hell",
        "homo",
        "horny",
        "jerk",
        "kike",
        "kill",
        "killed",
        "killing",
        "nazi",
        "nigger",
        "niggers",
        "penis",
        "piss",
        "pissed",
        "porn",
        "prick",
        "pussy",
        "rape",
        "raped",
        "retard",
        "screw",
        "screwed",
        "sex",
        "sexy",
        "shit",
        "shits",
        "shitty",
        "slut",
        "spic",
        "suicide",
        "tit",
        "tits",
        "twat",
        "vagina",
        "whore",
        "whores",
        "wank",
        "wanker",
        "murder",
        "murdered",
        "drunk",
        "booze",
    }
)
"""Profanity, slurs, sexual words, and violence or drink words unfit for background music."""

BLOCKED_MANDARIN = frozenset("屎尿屁操肏屌屄妓娼淫杀尸死贼奸")
"""Single characters kept out of Mandarin lyrics (vulgar, sexual, death and violence)."""


def is_blocked(word: str, language: str) -> bool:
    if language == "zh":
        return any(character in BLOCKED_MANDARIN for character in word)
    return word.lower() in BLOCKED_ENGLISH
