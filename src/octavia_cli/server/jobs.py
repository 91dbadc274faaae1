"""What each kind of job takes (validated: unknown options are refused), what it costs,
and how it runs: through the same pipeline functions as the CLI."""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from octavia_cli import config, pipeline
from octavia_cli.config import load_settings, option_flags, parse_value
from octavia_cli.errors import ConfigError, InputError
from octavia_cli.files import atomic_path, atomic_write_bytes
from octavia_cli.languages import normalize_language, normalize_targets
from octavia_cli.media.ffmpeg import probe
from octavia_cli.models.voices import NAME
from octavia_cli.project.outputs import output_name
from octavia_cli.server.store import Job, Store
from octavia_cli.text.cues import SubtitleFormat, SubtitleMode
from octavia_cli.text.glossary import Glossary, Term


def setting(name: str) -> Any:
    """The check of a job option that is a setting (``config.OPTIONS``): the setting's own
    type, choices and bounds, so a job, a flag and the config file accept the same values
    and say the same thing of a bad one."""
    info = config.OPTIONS[name]

    def check(value: Any) -> Any:
        if value is None:
            return None
        try:
            return parse_value(info.key, value)
        except ConfigError as exc:
            raise ValueError(exc.message.replace(f"Setting '{info.key}'", name)) from None

    return BeforeValidator(check)


def setting_flags(options: BaseModel) -> dict[str, Any]:
    """The job's options that are settings, as settings (``max_speed`` -> ``fit.max_speed``);
    those not given are left to the server's settings."""
    given = {name: getattr(options, name) for name in type(options).model_fields
             if name in config.OPTIONS and name not in JOB_ONLY}  # fmt: skip
    return option_flags(given)


# Named like a setting's option but taken another way by a job: a glossary comes as terms
# (written into the job's folder), a voice by its name in the server's library.
JOB_ONLY = frozenset({"glossary", "voice"})


def _targets(codes: list[str]) -> list[str]:
    """Target languages normalised where they enter (``ES``, ``es-MX`` -> ``es``) and
    deduplicated, so the charge, the outputs and the worker all see the same codes."""

    try:
        return list(normalize_targets(codes))
    except InputError as exc:
        raise ValueError(str(exc)) from None


def _language(code: str | None) -> str | None:

    try:
        return None if code is None else normalize_language(code)
    except InputError as exc:
        raise ValueError(str(exc)) from None


# A speaker of a ``S1=NAME,S2=NAME`` voice mapping: an id or a label, never a path.
_SPEAKER = re.compile(r"[^\W_][\w .-]{0,63}")
_VOICE_RULE = (
    "a voice of the server's library is named with letters, digits, '.', '_' or '-' (up to "
    "64, starting with a letter or digit), one for everyone or SPEAKER=NAME,... per speaker; "
    "paths are not accepted"
)


def _library_voice_name(name: str) -> str:

    # .onnx and .pt name files (a Piper voice, a conditioning) to the engines: refused too.
    if not NAME.fullmatch(name) or name.lower().endswith((".onnx", ".pt")):
        raise ValueError(f"'{name}' is not a voice name: {_VOICE_RULE}.")
    return name


def _voice(value: str | None) -> str | None:
    """A remote client names voices of the server's library by name only (checked here,
    before anything touches the disk): ``NAME``, or ``S1=NAME,S2=NAME`` per speaker."""
    if value is None:
        return None
    if "=" not in value:
        return _library_voice_name(value.strip())
    pairs = []
    for item in value.split(","):
        speaker, _, name = (part.strip() for part in item.partition("="))
        if not _SPEAKER.fullmatch(speaker):
            raise ValueError(f"'{item.strip()}' is not SPEAKER=NAME: {_VOICE_RULE}.")
        pairs.append(f"{speaker}={_library_voice_name(name)}")
    return ",".join(pairs)


def _single_voice(value: str | None) -> str | None:
    if value is not None and "=" in value:
        raise ValueError(f"'{value}' is not a voice name: {_VOICE_RULE}.")
    return _voice(value)


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    preset: Annotated[str | None, setting("preset")] = None

    def stored(self) -> dict[str, Any]:
        """The options as the job keeps them: normalised, by their wire names."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class TranscribeOptions(_Options):
    language: str | None = Field(None, alias="from")

    _normalize_language = field_validator("language")(_language)


class TranslateOptions(_Options):
    to: list[str] = Field(min_length=1, max_length=8)
    source_language: str | None = Field(None, alias="from")

    _normalize_targets = field_validator("to")(_targets)
    _normalize_source = field_validator("source_language")(_language)


# A glossary sent with a job: source term -> target ("" keeps the term).
GlossaryTerms = dict[str, str]
MAX_GLOSSARY_TERMS = 5000


class SubtitleOptions(_Options):
    to: list[str] = Field(default_factory=list, max_length=8)
    source_language: str | None = Field(None, alias="from")
    glossary: GlossaryTerms | None = Field(None, max_length=MAX_GLOSSARY_TERMS)
    format: Literal["srt", "vtt", "ass", "json", "txt"] = "srt"
    embed: bool = False
    burn_in: bool = False
    max_line_chars: Annotated[int | None, setting("max_line_chars")] = None
    max_lines: Annotated[int | None, setting("max_lines")] = None
    max_cps: Annotated[float | None, setting("max_cps")] = None
    min_duration: Annotated[float | None, setting("min_duration")] = None
    max_duration: Annotated[float | None, setting("max_duration")] = None
    min_gap: Annotated[float | None, setting("min_gap")] = None

    _normalize_targets = field_validator("to")(_targets)
    _normalize_source = field_validator("source_language")(_language)


class DubOptions(_Options):
    to: list[str] = Field(min_length=1, max_length=8)
    source_language: str | None = Field(None, alias="from")
    glossary: GlossaryTerms | None = Field(None, max_length=MAX_GLOSSARY_TERMS)
    max_speed: Annotated[float | None, setting("max_speed")] = None
    separate: bool | None = None
    speakers: Annotated[int | None, setting("speakers")] = None
    min_speakers: Annotated[int | None, setting("min_speakers")] = None
    max_speakers: Annotated[int | None, setting("max_speakers")] = None
    allow_video_stretch: Annotated[bool | None, setting("allow_video_stretch")] = None
    diarization: Annotated[str | None, setting("diarization")] = None
    tts_engine: Annotated[str | None, setting("tts_engine")] = None
    voice: str | None = Field(None, max_length=2000)  # NAME or S1=NAME,...: the server's library
    ducking: Annotated[str | None, setting("ducking")] = None
    loudness: Annotated[str | None, setting("loudness")] = None
    qa: Annotated[str | None, setting("qa")] = None
    max_attempts: Annotated[int | None, setting("max_attempts")] = None
    # The key's own voice library: a speaker matched to a stored voice keeps it; with
    # save_voices each new speaker is stored there for the next episode.
    match_voices: Annotated[bool | None, setting("match_voices")] = None
    save_voices: Annotated[bool | None, setting("save_voices")] = None
    # The mouth of the one face on screen re-drawn to follow the dub (the picture is
    # re-encoded; the server's GPU does it).
    lip_sync: Annotated[bool | None, setting("lip_sync")] = None
    lip_sync_crf: Annotated[int | None, setting("lip_sync_crf")] = None
    replace_audio: bool = False
    # The output's format as an extension (".mkv", ".mp3"...); default: the input's.
    output_format: str | None = Field(None, pattern=r"^\.[a-z0-9]{2,5}$")
    parallel: bool = False  # with serve --broker: chunks transcribed on several workers

    _normalize_targets = field_validator("to")(_targets)
    _normalize_source = field_validator("source_language")(_language)
    _check_voice = field_validator("voice")(_voice)


class SynthesizeOptions(_Options):
    text: str = Field(min_length=1, max_length=20_000)
    to: str
    voice: str | None = Field(None, max_length=64)  # a voice of the server's library (xtts)

    _normalize_target = field_validator("to")(_language)
    _check_voice = field_validator("voice")(_single_voice)


OPTIONS: dict[str, type[_Options]] = {
    "transcribe": TranscribeOptions,
    "translate": TranslateOptions,
    "subtitles": SubtitleOptions,
    "dub": DubOptions,
    "synthesize": SynthesizeOptions,
}


def parse_options(kind: str, options: dict[str, Any]) -> _Options:
    """Raises pydantic.ValidationError for unknown or bad options."""
    return OPTIONS[kind].model_validate(options)


def cost_minutes(kind: str, options: _Options, duration_s: float) -> float:
    """Minutes of media processed: a dub or translation per target language, anything else
    once; speech synthesis by the length of the text (about 15 characters a second)."""
    if isinstance(options, SynthesizeOptions):
        return round(len(options.text) / 15 / 60, 4)
    targets = len(getattr(options, "to", []) or []) or 1
    factor = targets if kind in ("dub", "translate") else 1
    return round(math.ceil(duration_s) / 60 * factor, 4)


def _settings(options: _Options, device: str | None, **extra: Any) -> Any:
    """The job's settings: the server's, with the job's options (those that are settings,
    and ``extra``) and the worker's GPU."""
    flags = setting_flags(options) | {k: v for k, v in extra.items() if v is not None}
    if device is not None:
        flags["general.device"] = device
    return load_settings(flags)


def _glossary_file(options: _Options, folder: Path) -> str | None:
    """The job's glossary written into its folder, for the ``mt.glossary`` setting."""

    terms = getattr(options, "glossary", None) or {}
    glossary = Glossary(tuple(Term(s.strip(), t.strip()) for s, t in terms.items() if s.strip()))
    if not glossary:
        return None
    glossary.write_csv(folder / "glossary.csv")
    return str(folder / "glossary.csv")


def _files(folder: Path, languages: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The job's results (see :mod:`octavia_cli.remote.protocol`): each file of ``folder``
    with its size and, from ``languages`` (file name -> language), the language it is in."""
    results = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            result: dict[str, Any] = {"name": path.name, "size": path.stat().st_size}
            if languages and path.name in languages:
                result["language"] = languages[path.name]
            results.append(result)
    return results


NAME_MAX = 255  # bytes in a file name
# The longest ending Octavia gives a result named from its input's stem (stem.es.mp4...).
LONGEST_RESULT_ENDING = len(".transcribe.json")
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}")


def name_suffix(filename: str) -> str:
    """``filename``'s extension if it is a plain one (``.mp4``), else ""."""
    suffix = Path(filename).suffix
    return suffix if _SUFFIX.fullmatch(suffix) else ""


def input_name(filename: str) -> str:
    """The name of a job's input in its folder: the upload's original name, its stem cut
    (by bytes, at a character) so that every result named from it fits in a file name."""
    suffix = name_suffix(filename)
    stem = filename[: len(filename) - len(suffix)]
    room = NAME_MAX - LONGEST_RESULT_ENDING
    return stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip(" .") + suffix


def job_source(job: Job, store: Store, folder: Path) -> Path:
    """The job's input, linked (or copied) into its folder, named after the upload's
    original name (its results are named from that stem)."""
    upload = store.upload(job.upload_id)
    assert upload is not None
    source = folder / "input" / input_name(upload["filename"])
    if not source.exists():
        source.parent.mkdir(parents=True, exist_ok=True)
        try:
            source.hardlink_to(upload["path"])
        except OSError:
            shutil.copyfile(upload["path"], source)
    return source


def key_voices(data_dir: Path, key_id: str | None) -> Path:
    """A key's own voice library, ``<data dir>/voices/<key id>`` (an open server's:
    ``voices/local``). Its jobs name, match and save voices there only, so one key never
    lists, uses or learns of another's voices."""
    return data_dir / "voices" / (key_id or "local")


def key_library(folder: Path, key_id: str | None) -> str:
    """The voice library of the job in ``folder`` (``<data dir>/jobs/<id>``) of ``key_id``."""
    return str(key_voices(folder.parent.parent, key_id))


def dub_request(
    options: DubOptions, source: Path, folder: Path, device: str | None = None,
    key_id: str | None = None,
) -> tuple[Any, Any]:  # fmt: skip
    """The settings and the pipeline request of a dub job of ``key_id``."""

    flags = {
        "tts.voice_library": key_library(folder, key_id),
        "separation.engine": None if options.separate is None
        else ("demucs" if options.separate else "none"),
        "mt.glossary": _glossary_file(options, folder),
        "tts.voice": options.voice,
    }  # fmt: skip
    settings = _settings(options, device, **flags)
    has_video = probe(source).has_video
    target = options.to[0] if len(options.to) == 1 else "{lang}"
    request = pipeline.DubRequest(
        source=source,
        targets=tuple(options.to),
        source_language=options.source_language,
        output=folder / "out" / output_name(source, target, has_video, options.output_format),
        workdir=folder,
        force=True,
        replace_audio=options.replace_audio,
    )
    return settings, request


def run_job(
    job: Job, store: Store, folder: Path, hook: Callable[[Any], None], device: str | None = None,
    runner: Any = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Run ``job`` in ``folder`` (its project and ``out/`` live there) on ``device`` (the
    worker's GPU, or the settings' choice) with the worker's ``runner`` (its engines stay
    loaded between jobs); return its results."""

    with pipeline.runner_for(runner) as run:
        return _run_job(job, store, folder, hook, device, run)


def _run_job(
    job: Job, store: Store, folder: Path, hook: Callable[[Any], None], device: str | None,
    runner: Any,
) -> list[dict[str, Any]]:  # fmt: skip

    options = parse_options(job.kind, job.options)
    out = folder / "out"
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(options, SynthesizeOptions):
        language = options.to
        extra = {"tts.voice": options.voice, "tts.engine": "xtts"} if options.voice else {}
        settings = _settings(options, device, **extra,
                             **{"tts.voice_library": key_library(folder, job.key_id)})  # fmt: skip
        engine, voice = pipeline.choose_voice(runner, settings, language)
        try:
            with atomic_path(out / f"speech.{language}.wav") as tmp:
                engine.synthesize(options.text, language, voice, tmp)
        finally:
            runner.release(engine)
        return _files(out)
    source = job_source(job, store, folder)
    if isinstance(options, DubOptions):
        settings, request = dub_request(options, source, folder, device, job.key_id)
        dubbed = pipeline.dub(request, settings, hook, runner)
        return _files(out, {path.name: lang for lang, path in dubbed.outputs.items()})
    elif isinstance(options, SubtitleOptions):
        mode = (
            SubtitleMode.EMBED if options.embed
            else SubtitleMode.BURN_IN if options.burn_in else SubtitleMode.FILE
        )  # fmt: skip
        suffix = source.suffix if mode is not SubtitleMode.FILE else f".{options.format}"
        name = (
            f"{source.stem}.{{lang}}{suffix}"
            if len(options.to) > 1
            else (f"{source.stem}{'.' + options.to[0] if options.to else ''}{suffix}")
        )
        request = pipeline.SubtitleRequest(
            input=source, targets=tuple(options.to), source_language=options.source_language,
            output=out / name, fmt=SubtitleFormat(options.format), mode=mode, workdir=folder,
            force=True,
        )  # fmt: skip
        rules = {"mt.glossary": _glossary_file(options, folder)}
        pipeline.subtitles(request, _settings(options, device, **rules), hook, runner)
        return _files(out, {name.replace("{lang}", lang): lang for lang in options.to})
    else:  # transcribe or translate: the transcript (with translations) as JSON
        settings = _settings(options, device)
        project = pipeline.open_project(source, folder)
        spoken = getattr(options, "language", None) or getattr(options, "source_language", None)
        with project.locked():
            transcript = pipeline.prepare_transcript(
                project, source, settings, spoken, hook, runner
            )
            data = transcript.to_public_dict()
            if isinstance(options, TranslateOptions):
                pipeline.translate_project(project, options.to, settings, hook, runner)
                data["translations"] = {
                    target: [s.translations[target].text for s in transcript.segments]
                    for target in options.to
                }

        atomic_write_bytes(
            out / f"{source.stem}.{job.kind}.json",
            json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8"),
        )
    return _files(out)
