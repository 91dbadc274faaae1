"""The translation models the ``transformers`` engine knows: hub id, revision, licence, size.

OPUS-MT (MarianMT) models are small (about 300 MB) and good for the pairs they were trained
on; a many-to-many model covers every other pair. ``auto`` takes the OPUS-MT model for the
pair if there is one, else M2M100 418M (MIT licence). NLLB-200 distilled 600M translates
better but its weights are CC-BY-NC (non-commercial): choose it with ``--model nllb-600m``.

Revisions: a model whose commit we have verified is pinned to it; the others follow the
hub's ``main`` until ``octavia models pull`` (issue 9) records the commit each download
resolved to. Either way the project records the model id, so a changed model re-translates.
"""

from __future__ import annotations

from dataclasses import dataclass

MAIN = "main"

# (source, target) pairs with a Helsinki-NLP/opus-mt-{source}-{target} model.
OPUS_MT_PAIRS: frozenset[tuple[str, str]] = frozenset(
    [("en", t) for t in "es fr de it nl ru zh ar sv fi da hi id vi uk cs ro ca".split()]
    + [(s, "en") for s in "es fr de it nl ru zh ar ja ko sv fi da hi id vi uk cs pl tr".split()]
    + [("es", "fr"), ("fr", "es"), ("de", "fr"), ("fr", "de"), ("es", "de"), ("de", "es")]
    + [("es", "it"), ("it", "es"), ("fr", "it"), ("it", "fr")]
)
# Revisions we have checked; the rest follow ``main``.
OPUS_MT_REVISIONS = {("en", "es"): "5bc4493d463cf000c1f0b50f8d56886a392ed4ab"}
# Licences. The OPUS-MT project distributes its models under CC-BY-4.0 (the README of
# github.com/Helsinki-NLP/OPUS-MT-train, and the Tatoeba-Challenge's); on the hub most
# model cards say Apache-2.0 (the hub's staff added that metadata to every Helsinki-NLP
# card in September 2021), and some were set to CC-BY-4.0 since (the rewritten cards; the
# author's own change on zh-en). Read from the cards' licence metadata on huggingface.co
# (model pages found with the search tool, corpus docs, in 2025), for these pairs; the
# others were not checked and are given the project's CC-BY-4.0. Either way: attribute.
OPUS_MT_CARD_LICENSES = {
    **dict.fromkeys(
        [("en", "es"), ("es", "en"), ("en", "fr"), ("fr", "en"), ("en", "it"), ("it", "en"),
         ("en", "nl"), ("nl", "en"), ("en", "ru"), ("en", "zh"), ("en", "ar"), ("ar", "en"),
         ("de", "en"), ("ja", "en")],
        "Apache-2.0",
    ),
    **dict.fromkeys([("en", "de"), ("ru", "en"), ("zh", "en")], "CC-BY-4.0"),
}  # fmt: skip
OPUS_MT_LICENSE = "CC-BY-4.0"  # the project's, where the card was not checked
# A multi-target OPUS-MT model (its vocabulary has ``>>id<<`` labels) translates into the
# language whose label starts the text, and into any of them without one. The label for a
# language, where it is not the language's own or ISO 639-3 code (the model cards: en-zh
# wants >>cmn_Hans<< for simplified Mandarin; en-ar >>ara<< for Standard Arabic).
OPUS_MT_TARGET_LABELS = {"zh": "cmn_Hans", "ar": "ara"}

# The 100 languages of M2M100 (ISO 639-1, as its tokenizer names them).
M2M100_LANGUAGES = frozenset(
    "af am ar ast az ba be bg bn br bs ca ceb cs cy da de el en es et fa ff fi fr fy ga gd gl "
    "gu ha he hi hr ht hu hy id ig ilo is it ja jv ka kk km kn ko lb lg ln lo lt lv mg mk ml "
    "mn mr ms my ne nl no ns oc or pa pl ps pt ro ru sd si sk sl so sq sr ss su sv sw ta th tl "
    "tn tr uk ur uz vi wo xh yi yo zh zu".split()
)

# NLLB-200 names languages by ISO 639-3 code and script; where the ISO 639-1 code is a
# macrolanguage, NLLB trained on one of its members.
NLLB_EXCEPTIONS = {
    "ar": "arb_Arab",
    "fa": "pes_Arab",
    "ms": "zsm_Latn",
    "et": "est_Latn",
    "lv": "lvs_Latn",
    "uz": "uzn_Latn",
    "sw": "swh_Latn",
    "zh": "zho_Hans",
    "no": "nob_Latn",
    "nb": "nob_Latn",
    "ne": "npi_Deva",
    "or": "ory_Orya",
    "mn": "khk_Cyrl",
    "om": "gaz_Latn",
    "qu": "quy_Latn",
    "az": "azj_Latn",
    "sq": "als_Latn",
    "ps": "pbt_Arab",
    "yi": "ydd_Hebr",
    "mg": "plt_Latn",
    "ku": "kmr_Latn",
}


@dataclass(frozen=True)
class MtModel:
    name: str
    hub_id: str
    revision: str
    family: str  # "marian", "m2m100" or "nllb"
    license: str
    size_mb: int

    def supports(self, source: str, target: str) -> bool:
        if self.family == "marian":
            return self.hub_id.endswith(f"-{source}-{target}")
        if self.family == "m2m100":
            return source in M2M100_LANGUAGES and target in M2M100_LANGUAGES
        return nllb_code(source) is not None and nllb_code(target) is not None


def opus_mt(source: str, target: str) -> MtModel:
    return MtModel(
        name=f"opus-mt-{source}-{target}",
        hub_id=f"Helsinki-NLP/opus-mt-{source}-{target}",
        revision=OPUS_MT_REVISIONS.get((source, target), MAIN),
        family="marian",
        license=opus_mt_license(source, target),
        size_mb=300,
    )


def opus_mt_license(source: str, target: str) -> str:
    """What the pair's model card says, with the project's licence where they differ."""
    card = OPUS_MT_CARD_LICENSES.get((source, target))
    if card is None:
        return f"{OPUS_MT_LICENSE} (OPUS-MT; card not checked)"
    return card if card == OPUS_MT_LICENSE else f"{card} (card) / {OPUS_MT_LICENSE} (OPUS-MT)"


MANY_TO_MANY: dict[str, MtModel] = {
    "m2m100-418m": MtModel("m2m100-418m", "facebook/m2m100_418M", MAIN, "m2m100", "MIT", 1940),
    "m2m100-1.2b": MtModel("m2m100-1.2b", "facebook/m2m100_1.2B", MAIN, "m2m100", "MIT", 4960),
    "nllb-600m": MtModel(
        "nllb-600m", "facebook/nllb-200-distilled-600M", MAIN, "nllb", "CC-BY-NC-4.0", 2460
    ),
    "nllb-1.3b": MtModel(
        "nllb-1.3b", "facebook/nllb-200-distilled-1.3B", MAIN, "nllb", "CC-BY-NC-4.0", 5480
    ),
}
DEFAULT_MANY_TO_MANY = "m2m100-418m"


def catalog() -> list[MtModel]:
    """Every model the engine can name, for ``octavia models list`` and messages."""
    return [opus_mt(s, t) for s, t in sorted(OPUS_MT_PAIRS)] + list(MANY_TO_MANY.values())


def find(name: str) -> MtModel | None:
    """A catalog model by short name (``opus-mt-en-es``, ``nllb-600m``) or hub id."""
    for model in catalog():
        if name in (model.name, model.hub_id):
            return model
    return None


def choose(setting: str, source: str, target: str) -> MtModel | None:
    """The model ``auto`` (or a catalog name) means for a pair; None if it cannot do it."""
    if setting == "auto":
        if (source, target) in OPUS_MT_PAIRS:
            return opus_mt(source, target)
        return MANY_TO_MANY[DEFAULT_MANY_TO_MANY]
    model = find(setting)
    return model if model is not None and model.supports(source, target) else None


def marian_target_label(labels: list[str], target: str) -> str | None:
    """The label (``>>cmn_Hans<<``) a Marian model with target ``labels`` needs at the start
    of a text to translate into ``target``: "" when it has no labels (one target), None
    when it has labels and none is ``target``'s."""
    if not labels:
        return ""
    import langcodes

    try:
        alpha3 = langcodes.Language.get(target).to_alpha3()
    except (LookupError, ValueError):
        alpha3 = ""
    for code in (OPUS_MT_TARGET_LABELS.get(target), target, alpha3):
        if code and f">>{code}<<" in labels:
            return f">>{code}<<"
    return labels[0] if len(labels) == 1 else None


def nllb_code(language: str) -> str | None:
    """NLLB's code for an ISO 639-1 language (``es`` -> ``spa_Latn``), None if it has none."""
    if language in NLLB_EXCEPTIONS:
        return NLLB_EXCEPTIONS[language]
    import langcodes

    tag = langcodes.Language.get(language)
    try:
        code = f"{tag.to_alpha3()}_{tag.maximize().script}"
    except LookupError:
        return None
    return code if code in nllb_languages() else None


def nllb_languages() -> frozenset[str]:
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

    return frozenset(FAIRSEQ_LANGUAGE_CODES)
