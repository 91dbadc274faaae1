"""Typed records that stages produce and the project manifest stores.

Units are in the field names (``start_s``, ``sample_rate_hz``). Every record converts to and
from plain JSON-able dicts, so ``project.json`` stays readable and hand-editable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self


def stable_hash(*parts: Any) -> str:
    """Short SHA-256 of JSON-serialised ``parts``: the inputs hash of a stage or clip."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


class SchemaError(ValueError):
    """A record in ``project.json`` that does not fit the schema: an unknown (misspelt) key,
    a missing one, or a value of the wrong kind. ``where`` says which record."""

    def __init__(self, where: str, problem: str, known: tuple[str, ...] = ()) -> None:
        super().__init__(f"{where}: {problem}")
        self.where, self.problem, self.known = where, problem, known


def check_keys(data: Any, cls: type, where: str) -> dict[str, Any]:
    """``data`` as the keyword arguments of the dataclass ``cls``, or a :class:`SchemaError`
    naming the first key it does not know (so a misspelt key is never dropped silently)."""
    if not isinstance(data, dict):
        raise SchemaError(where, f"expected an object, found {type(data).__name__}")
    fields = dataclasses.fields(cls)
    names = tuple(f.name for f in fields)
    for key in data:
        if key not in names:
            raise SchemaError(where, f"unknown key '{key}'", names)
    required = [
        f.name for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]  # fmt: skip
    missing = [name for name in required if name not in data]
    if missing:
        raise SchemaError(where, f"missing key '{missing[0]}'", names)
    return dict(data)


class _Record:
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "") -> Self:
        """Strict: an unknown or missing key is a :class:`SchemaError` naming it."""
        values = check_keys(data, cls, where or cls.__name__)
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise SchemaError(where or cls.__name__, str(exc)) from None


@dataclass
class Word(_Record):
    text: str
    start_s: float
    end_s: float
    probability: float = 1.0


class FitStatus(StrEnum):
    FITS = "fits"  # the clip fits its slot at natural speed
    SPED_UP = "sped_up"  # sped up within the allowed bound to fit
    SLOWED = "slowed"  # slowed a little (down to the band's lower edge) to fill its slot
    OVERFLOW = "overflow"  # even at the bound it runs into the following silence
    PUSHED = "pushed"  # it started late because the previous line ran over
    BORROWED = "borrowed"  # it starts early, in the silence before its slot


@dataclass
class Translation(_Record):
    text: str
    source_hash: str  # hash of the source text and engine it was made from
    engine: str
    # Length control: the spoken duration estimated for ``text`` at the voice's measured
    # rate, its ratio to the line's slot, which candidate was kept (0: the engine's best)
    # out of how many, and whether it came from the source with fillers removed.
    estimated_s: float | None = None
    ratio: float | None = None
    candidate: int = 0
    candidates: int = 1
    condensed: bool = False
    # When the translation was unusable (empty, or no word in it): "source", the line is
    # spoken in its source words (names, numbers, a word the engine dropped); "merged", its
    # words are spoken by the neighbouring line of its sentence, which carries the whole
    # translation. "" for a translation used as it came.
    fallback: str = ""


@dataclass
class Clip(_Record):
    """A synthesized line, as the TTS engine made it."""

    path: str  # relative to the project folder
    key: str  # hash of text, engine, voice and language: re-synthesize when it changes
    engine: str
    voice: str
    duration_s: float
    sample_rate_hz: int
    tts_speed: float = 1.0  # the engine's own rate control (XTTS), before any stretching
    similarity: float | None = None  # speaker similarity to the voice's reference (XTTS)
    attempts: int = 1  # synthesized this many times (re-done when the voice drifted)
    pace: float = 1.0  # the speaker's pace: the engine rate their typical line fits at
    natural_s: float | None = None  # spoken length at the engine's default rate
    base: str = ""  # the key of text, engine, voice and language the length was measured for
    take: int = 0  # which take of the line this is (0: the first; the check stage's retakes)


@dataclass
class Fit(_Record):
    """A clip placed on the timeline."""

    path: str  # the fitted clip, relative to the project folder
    key: str
    status: str  # a FitStatus value
    speed: float  # 1.0 means natural speed
    start_s: float  # where the dubbed line starts on the output timeline
    end_s: float
    slot_start_s: float  # the source line's span
    slot_end_s: float
    overflow_s: float = 0.0  # how far past the slot end the dubbed line runs
    shift_s: float = 0.0  # how late it starts compared with the source line
    stretch: float = 1.0  # the picture is slowed this much over the slot (--allow-video-stretch)


@dataclass
class TakeCheck(_Record):
    """One take of a line, as the check stage heard it (fitted, in place)."""

    take: int
    path: str  # the take's clip, relative to the project folder
    duration_s: float  # the clip's length as synthesized
    tts_speed: float  # the engine's own rate for it
    heard: str  # what the recogniser heard, in the target language
    cer: float  # character error rate of ``heard`` against the line's text (normalised)
    duration_ratio: float  # its spoken length at speed 1 against the length its text expects
    similarity: float | None  # speaker similarity to the voice's reference (XTTS), if measured
    passed: bool
    problems: list[str] = field(default_factory=list)  # why it failed, in words
    fit_key: str = ""  # the fit it was heard in


@dataclass
class LineCheck(_Record):
    """Every take of one line in one language, and which is kept."""

    key: str  # of the fitted clip and the check's settings: checked again when it changes
    clip_key: str  # the text, engine and voice the takes speak (new text: new takes)
    takes: list[TakeCheck] = field(default_factory=list)
    chosen: int = 0  # the take kept
    flagged: bool = False  # no take passed: kept anyway (never dropped), and reported

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "check") -> LineCheck:
        data = check_keys(data, cls, where)
        takes = [TakeCheck.from_dict(t, f"{where}.takes[{i}]")
                 for i, t in enumerate(data.get("takes", []))]  # fmt: skip
        return cls(**{**data, "takes": takes})

    def take(self, index: int) -> TakeCheck | None:
        return next((t for t in self.takes if t.take == index), None)

    @property
    def kept(self) -> TakeCheck | None:
        return self.take(self.chosen)


@dataclass
class Segment(_Record):
    """One dubbing line: a sentence or a phrase between pauses, by one speaker."""

    id: str
    start_s: float
    end_s: float
    text: str
    words: list[Word] = field(default_factory=list)
    speaker: str = "S1"
    translations: dict[str, Translation] = field(default_factory=dict)
    clips: dict[str, Clip] = field(default_factory=dict)
    fits: dict[str, Fit] = field(default_factory=dict)
    checks: dict[str, LineCheck] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "segment") -> Segment:
        data = check_keys(data, cls, where)
        return cls(
            id=str(data["id"]),
            start_s=float(data["start_s"]),
            end_s=float(data["end_s"]),
            text=data["text"],
            speaker=data.get("speaker", "S1"),
            words=[
                Word.from_dict(w, f"{where}.words[{i}]")
                for i, w in enumerate(data.get("words", []))
            ],
            translations={
                k: Translation.from_dict(v, f"{where}.translations.{k}")
                for k, v in data.get("translations", {}).items()
            },
            clips={
                k: Clip.from_dict(v, f"{where}.clips.{k}") for k, v in data.get("clips", {}).items()
            },
            fits={
                k: Fit.from_dict(v, f"{where}.fits.{k}") for k, v in data.get("fits", {}).items()
            },
            checks={
                k: LineCheck.from_dict(v, f"{where}.checks.{k}")
                for k, v in data.get("checks", {}).items()
            },
        )


@dataclass
class Speaker(_Record):
    """A voice heard in the source, as the diarize stage found it.

    ``id`` (S1, S2...) is what lines refer to. ``label`` is the speaker's name: edit it to
    rename them; give two speakers the same label to merge them (they then share one voice,
    the first one's). ``voice`` may name a stored voice (or an espeak-ng/Piper voice) for
    them; empty: cloned from their own speech (XTTS) or chosen by their pitch.
    ``reference`` lists the spans of their speech, free of other speakers, that a clone of
    their voice is made from.
    """

    id: str
    label: str = ""
    speech_s: float = 0.0
    reference: list[list[float]] = field(default_factory=list)
    pitch_hz: float | None = None
    voice: str = ""

    def __post_init__(self) -> None:
        self.label = self.label or self.id


@dataclass
class Transcript(_Record):
    """What the ASR stage produced, in dubbing lines."""

    language: str
    language_probability: float
    duration_s: float
    engine: str
    model: str
    segments: list[Segment] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "transcript") -> Transcript:
        data = check_keys(data, cls, where)
        return cls(
            language=data["language"],
            language_probability=data["language_probability"],
            duration_s=data["duration_s"],
            engine=data["engine"],
            model=data["model"],
            segments=[
                Segment.from_dict(s, f"{where}.segments[{i}]")
                for i, s in enumerate(data.get("segments", []))
            ],
        )

    def to_public_dict(self) -> dict[str, Any]:
        """The transcript as ``octavia transcribe --json`` prints it (no dub state)."""
        return {
            "language": self.language,
            "language_probability": self.language_probability,
            "duration_s": self.duration_s,
            "engine": self.engine,
            "model": self.model,
            "segments": [
                {
                    "id": s.id,
                    "start_s": s.start_s,
                    "end_s": s.end_s,
                    "text": s.text,
                    "speaker": s.speaker,
                    "words": [w.to_dict() for w in s.words],
                }
                for s in self.segments
            ],
        }


def format_timestamp(seconds: float, *, decimal: str = ".", always_hours: bool = False) -> str:
    """``3725.5`` -> ``01:02:05.500``; hours are shown when non-zero or ``always_hours``."""
    milliseconds = max(0, round(seconds * 1000))
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    secs, milliseconds = divmod(milliseconds, 1000)
    head = f"{hours:02d}:" if hours or always_hours else ""
    return f"{head}{minutes:02d}:{secs:02d}{decimal}{milliseconds:03d}"


# -- what each stage records (``project.json``'s ``stages.<name>.info``) -------------------


@dataclass
class ExtractInfo(_Record):
    sample_rate_hz: int
    channels: int
    duration_s: float  # as the container says
    decoded_s: float | None = None  # what decoded (less in a truncated file)
    # The source's integrated loudness over the output's length (-70: silence); None
    # when it was not measured then (a project from an earlier version, a truncated file).
    source_lufs: float | None = None


@dataclass
class SeparateInfo(_Record):
    engine: str


@dataclass
class TranscribeInfo(_Record):
    language: str
    lines: int


@dataclass
class DiarizeInfo(_Record):
    engine: str
    speakers: int
    lines: int


@dataclass
class TranslateInfo(_Record):
    translated: int
    shortened: int
    over_max_speed: int
    chars_per_s: float | None = None
    glossary_misses: dict[str, int] = field(default_factory=dict)
    from_source: int = 0  # lines spoken in their source words (their translation was empty)
    merged: int = 0  # lines whose words a neighbour of their sentence speaks


@dataclass
class SynthesizeInfo(_Record):
    synthesized: int
    engine: str
    paces: dict[str, float] = field(default_factory=dict)
    voices: dict[str, str] = field(default_factory=dict)  # speaker -> voice


@dataclass
class FitInfo(_Record):
    refitted: int
    report: str  # the timing report, relative to the project folder
    stretches: list[list[float]] = field(default_factory=list)  # the picture's slowed spans
    added_s: float = 0.0
    totals: dict[str, Any] = field(default_factory=dict)  # the timing report's totals


@dataclass
class CheckInfo(_Record):
    checked: int  # lines heard by this run of the stage
    lines: int  # lines with a check
    retaken: int  # lines spoken more than once
    flagged: list[str] = field(default_factory=list)  # lines no take of which passed
    recogniser: str = ""
    limits: dict[str, float] = field(default_factory=dict)  # engine -> CER limit applied


@dataclass
class MixInfo(_Record):
    source_lufs: float | None
    target_lufs: float | None
    output_lufs: float | None
    true_peak_dbtp: float | None
    voice_gain_db: float
    ducking: str
    separated: bool
    duration_s: float


@dataclass
class LipSyncInfo(_Record):
    engine: str
    picture: str  # the re-encoded picture, relative to the project ("": the source's is kept)
    # Per shot: start_s, end_s, frames, status (lip-synced, no face, several faces, face too
    # small, off-screen speaker, no speech, failed), and speaker, score, frames_synced.
    shots: list[dict[str, Any]] = field(default_factory=list)
    synced_shots: int = 0
    synced_frames: int = 0
    rotation: int = 0  # the rotation the picture is shown at (0 also: written upright)


@dataclass
class MuxInfo(_Record):
    output: str  # the output's absolute path


StageInfo = (
    ExtractInfo | SeparateInfo | TranscribeInfo | DiarizeInfo | TranslateInfo | SynthesizeInfo
    | FitInfo | CheckInfo | MixInfo | LipSyncInfo | MuxInfo
)  # fmt: skip
# The info type of each stage, by the stage's name before ``:`` (``fit:es`` -> ``fit``).
STAGE_INFOS: dict[str, type[_Record]] = {
    "extract": ExtractInfo, "separate": SeparateInfo, "transcribe": TranscribeInfo,
    "diarize": DiarizeInfo, "translate": TranslateInfo, "synthesize": SynthesizeInfo,
    "fit": FitInfo, "check": CheckInfo, "mix": MixInfo, "lipsync": LipSyncInfo,
    "mux": MuxInfo,
}  # fmt: skip


def stage_info(stage: str, data: dict[str, Any], where: str) -> Any:
    """The typed info of ``stage`` from its JSON."""
    kind = stage.partition(":")[0]
    if kind not in STAGE_INFOS:
        raise SchemaError(where, f"unknown stage '{stage}'", tuple(STAGE_INFOS))
    return STAGE_INFOS[kind].from_dict(data, where)
