"""Everything that talks to ffmpeg: probing, audio extraction, muxing and encoding.

We call the ``ffmpeg``/``ffprobe`` programs with argument lists through :mod:`subprocess`
(as openai/whisper's ``load_audio`` does) rather than through ``ffmpeg-python``: the commands
here are short and fixed, the library has had no release since 2019, and a plain argument
list keeps ffmpeg's own stderr available for the error message.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from octavia_cli.errors import InputError, MissingDependencyError, StageError
from octavia_cli.files import disk_full, is_disk_full
from octavia_cli.media.timeline import audio_graph, video_graph

logger = logging.getLogger(__name__)

# Audio-only containers and the encoder used to write a dub back in the same format family.
AUDIO_FORMATS: dict[str, tuple[str, list[str]]] = {
    ".wav": ("pcm_s16le", []),
    ".mp3": ("libmp3lame", ["-q:a", "2"]),
    ".m4a": ("aac", ["-b:a", "192k"]),
    ".aac": ("aac", ["-b:a", "192k"]),
    ".flac": ("flac", []),
    ".ogg": ("libvorbis", ["-q:a", "5"]),
    ".oga": ("libvorbis", ["-q:a", "5"]),
    ".opus": ("libopus", ["-b:a", "128k"]),
}

# Audio codec for the dubbed track, per output video container.
VIDEO_AUDIO_CODECS: dict[str, list[str]] = {
    ".mp4": ["-c:a", "aac", "-b:a", "192k"],
    ".m4v": ["-c:a", "aac", "-b:a", "192k"],
    ".mov": ["-c:a", "aac", "-b:a", "192k"],
    ".mkv": ["-c:a", "aac", "-b:a", "192k"],
    ".webm": ["-c:a", "libopus", "-b:a", "128k"],
}


@dataclass(frozen=True)
class MediaInfo:
    """What ffprobe says about an input, in the units the pipeline needs."""

    path: str
    duration_s: float
    has_video: bool
    has_audio: bool
    audio_sample_rate_hz: int
    audio_channels: int
    format_name: str
    video_duration_s: float | None = None
    video_width: int = 0
    video_height: int = 0
    audio_duration_s: float | None = None  # the first audio stream's, as the container says
    audio_streams: int = 0
    subtitle_codecs: tuple[str, ...] = ()  # one per subtitle stream
    # Less decodes than the container says (a cut download): the durations above are then
    # what decodes, and the output is cut to them.
    truncated: bool = False

    @property
    def output_duration_s(self) -> float:
        """How long the dubbed audio must be: the picture's length for a video."""
        if self.has_video and self.video_duration_s:
            return self.video_duration_s
        return self.duration_s


def require_program(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise MissingDependencyError(
            f"The program '{name}' is not installed.",
            f"Install it (on Debian or Ubuntu: sudo apt-get install {name}).",
        )
    return found


def ff(path: Path) -> str:
    """``path`` as an argument of ffmpeg or ffprobe: absolute, with the ``file:`` protocol, so
    that a name starting with ``-`` is never read as an option nor one holding ``:`` as
    another protocol."""
    return "file:" + os.path.abspath(path)


def _run(args: list[str], what: str) -> subprocess.CompletedProcess[bytes]:
    logger.debug("running %s", " ".join(args))
    result = subprocess.run(args, capture_output=True, check=False)
    if result.returncode != 0:
        raise _failure(args, what, result.stderr)
    return result


def _failure(args: list[str], what: str, stderr: bytes) -> StageError:
    """ffmpeg's failure as one sentence (a full disk said as such, naming the file ffmpeg
    was writing: the last of ``args``)."""

    message = stderr.decode("utf-8", "replace").strip()
    if is_disk_full(message):
        return disk_full(
            None
            if args[-1] == "-" or args[-1].startswith("pipe:")
            else Path(args[-1].removeprefix("file:"))
        )
    tail = message.splitlines()[-3:]
    return StageError(f"ffmpeg could not {what}: {' / '.join(tail) or 'no message'}.")


_PROBED: dict[tuple[str, int, int, int], MediaInfo] = {}
_PROBED_MAX = 64


def probe(path: Path) -> MediaInfo:
    """Read duration and streams of ``path``. A file is probed once while it is unchanged
    (same inode, size and modification time): the checks, the extraction and the mux of a
    dub ask about the same input.

    Raises:
        InputError: the file is missing, or not media ffmpeg can read.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist.", "Check the file name.")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a media file.", "Give a video or audio file.")
    stat = path.stat()
    key = (os.path.abspath(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    known = _PROBED.get(key)
    if known is not None:
        return known if known.path == str(path) else replace(known, path=str(path))
    info = _probe(path)
    if len(_PROBED) >= _PROBED_MAX:
        _PROBED.clear()
    _PROBED[key] = info
    return info


def _probe(path: Path) -> MediaInfo:
    ffprobe = require_program("ffprobe")
    result = subprocess.run(
        [ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
         ff(path)],
        capture_output=True, check=False,
    )  # fmt: skip
    data = json.loads(result.stdout or b"{}") if result.returncode == 0 else {}
    streams = data.get("streams", [])
    # Cover art in mp3/m4a shows up as a one-frame video stream: it is not a picture to keep.
    video = [
        s
        for s in streams
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
    ]
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if result.returncode != 0 or not (video or audio):
        raise InputError(
            f"{path} is not a media file that ffmpeg can read.",
            "Give a video or audio file (mp4, mkv, mov, webm, wav, mp3, m4a, flac, ogg, opus).",
        )
    fmt = data.get("format", {})
    duration = _float(fmt.get("duration")) or max(
        (_float(s.get("duration")) or 0.0 for s in streams), default=0.0
    )
    first_audio = audio[0] if audio else {}
    return MediaInfo(
        path=str(path),
        duration_s=duration,
        has_video=bool(video),
        has_audio=bool(audio),
        audio_sample_rate_hz=int(first_audio.get("sample_rate", 0) or 0),
        audio_channels=int(first_audio.get("channels", 0) or 0),
        format_name=str(fmt.get("format_name", "")),
        video_duration_s=_float(video[0].get("duration")) if video else None,
        video_width=int(video[0].get("width", 0) or 0) if video else 0,
        video_height=int(video[0].get("height", 0) or 0) if video else 0,
        audio_duration_s=_float(first_audio.get("duration")),
        audio_streams=len(audio),
        subtitle_codecs=tuple(
            str(s.get("codec_name", "")) for s in streams if s.get("codec_type") == "subtitle"
        ),
    )


def decodable_video_s(path: Path) -> float | None:
    """How far the first video stream of ``path`` actually has packets (the end of its last
    packet), which is less than its declared duration in a truncated file."""
    ffprobe = require_program("ffprobe")
    result = subprocess.run(
        [ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries",
         "packet=pts_time,duration_time", "-of", "csv=p=0", ff(path)],
        capture_output=True, check=False, text=True,
    )  # fmt: skip
    end = None
    for line in result.stdout.splitlines():
        start, _, length = line.strip().partition(",")
        begin = _float(start)
        if begin is not None:
            end = max(end or 0.0, begin + (_float(length.split(",")[0]) or 0.0))
    return end


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class AudioTrack:
    """One WAV that :func:`decode_audio` writes: where, at what rate and channel count."""

    destination: Path
    sample_rate_hz: int
    channels: int


def extract_audio(source: Path, destination: Path, *, sample_rate_hz: int, channels: int) -> None:
    """Decode the first audio stream of ``source`` to 16-bit WAV at the given rate/channels
    (RF64 when it would pass 4 GiB)."""
    decode_audio(source, [AudioTrack(destination, sample_rate_hz, channels)])


def decode_audio(
    source: Path, tracks: list[AudioTrack], *, measure_s: float | None = None
) -> float | None:
    """Decode the first audio stream of ``source`` once into each of ``tracks`` (16-bit
    WAV, RF64 when one would pass 4 GiB), in one ffmpeg run.

    With ``measure_s`` the same run measures the stream's integrated loudness (ITU-R
    BS.1770, ffmpeg ``ebur128``) over its first ``measure_s`` seconds (padded with silence
    if it is shorter) and returns it in LUFS (-inf for silence); else it returns None.
    """
    ffmpeg = require_program("ffmpeg")
    args = [ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-y", "-i", ff(source)]
    for track in tracks:
        args += ["-map", "0:a:0", "-vn", "-ac", str(track.channels),
                 "-ar", str(track.sample_rate_hz), "-c:a", "pcm_s16le",
                 "-rf64", "auto",  # RF64 past WAV's 4 GiB limit (about 6 h of 48 kHz stereo)
                 "-f", "wav", ff(track.destination)]  # fmt: skip
    if measure_s is not None:
        meter = f"apad,atrim=end={measure_s:.6f},ebur128=peak=true"
        args += ["-map", "0:a:0", "-vn", "-af", meter, "-f", "null", "-"]
    result = subprocess.run(args, capture_output=True, check=False)
    if result.returncode != 0:
        written = [ff(tracks[0].destination)]  # the folder that is full holds them all
        raise _failure(written, "extract the audio", result.stderr)
    if measure_s is None:
        return None
    return _summary(result.stderr, "the audio")[0]


def _summary(stderr: bytes, what: str) -> tuple[float, float]:
    """Integrated loudness (LUFS, -inf below the -70 LUFS gate) and true peak (dBTP) from
    the last summary ``ebur128`` printed: it prints one each time ffmpeg configures the
    graph."""
    text = stderr.decode("utf-8", "replace")
    loudness, peak = _LOUDNESS.findall(text), _TRUE_PEAK.findall(text)
    if not loudness or not peak:
        raise StageError(f"ffmpeg could not measure the loudness of {what}.")
    lufs = float(loudness[-1])
    return (lufs if lufs > -70.0 else float("-inf")), float(peak[-1])


def mux_video(
    video: Path, audio: Path, destination: Path, *, language_iso639_2: str, title: str,
    keep_original_audio: bool = True, duration_s: float | None = None,
    picture: tuple[Path, int] | None = None,
) -> None:  # fmt: skip
    """Write ``audio`` as the first, default audio track, tagged with its language, and
    copy every stream of ``video`` bit for bit after it: the picture, the original audio
    tracks (no longer default; left out with ``keep_original_audio`` False), subtitles and,
    in Matroska, attachments. ``duration_s`` cuts every stream there (a truncated input).
    ``picture``: another file's video stream (a lip-synced one) written instead of
    ``video``'s, and the rotation it is shown at (degrees counter-clockwise)."""
    ffmpeg = require_program("ffmpeg")
    suffix = destination.suffix.lower()
    codec = VIDEO_AUDIO_CODECS.get(suffix, ["-c:a", "aac", "-b:a", "192k"])
    dub_codec = [arg + ":0" if arg in ("-c:a", "-b:a") else arg for arg in codec]
    media = probe(video)
    originals = media.audio_streams if keep_original_audio else 0
    keep_subtitles = bool(media.subtitle_codecs) and _subtitles_fit(media, suffix)
    args = [ffmpeg, "-nostdin", "-v", "error", "-y", "-i", ff(video), "-i", ff(audio)]
    if picture is None:
        args += ["-map", "1:a:0", "-map", "0:v"]
    else:
        if picture[1]:  # (ffmpeg 6.1 and later; an older one gets an upright picture)
            args += ["-display_rotation:v:0", str(picture[1])]
        args += ["-i", ff(picture[0]), "-map", "1:a:0", "-map", "2:v:0"]
    if keep_original_audio:
        args += ["-map", "0:a?"]
    if keep_subtitles:
        args += ["-map", "0:s?"]
    if suffix in (".mkv", ".webm") and suffix == Path(video).suffix.lower():
        args += ["-map", "0:t?"]
    args += ["-c", "copy", *dub_codec,
             "-metadata:s:a:0", f"language={language_iso639_2}",
             "-metadata:s:a:0", f"title={title}",
             "-disposition:a:0", "default"]  # fmt: skip
    for index in range(1, originals + 1):
        args += [f"-disposition:a:{index}", "0"]
    if duration_s is not None:
        args += ["-t", f"{duration_s:.3f}"]
    args += ["-map_metadata", "0", "-movflags", "+faststart",
             "-f", _muxer_for(destination), ff(destination)]  # fmt: skip
    _run(args, "write the dubbed video")


def mux_stretched_video(
    video: Path, audio: Path, destination: Path, pieces: list[tuple[float, float, float]], *,
    language_iso639_2: str, title: str, keep_original_audio: bool = True,
) -> None:  # fmt: skip
    """Like :func:`mux_video`, with the picture slowed over some spans (``pieces``, see
    timeline): the picture is re-encoded and the original audio tracks slowed by the same
    spans, so they stay in sync with it. Subtitle tracks and chapters, timed for the
    original, are left out."""

    ffmpeg = require_program("ffmpeg")
    suffix = destination.suffix.lower()
    codec = VIDEO_AUDIO_CODECS.get(suffix, ["-c:a", "aac", "-b:a", "192k"])
    originals = probe(video).audio_streams if keep_original_audio else 0
    graphs = [video_graph("0:v:0", "vout", pieces, _frame_rate(video))]
    graphs += [audio_graph(f"0:a:{i}", f"orig{i}", pieces) for i in range(originals)]
    args = [ffmpeg, "-nostdin", "-v", "error", "-y", "-i", ff(video), "-i", ff(audio),
            "-filter_complex", ";".join(graphs), "-map", "1:a:0", "-map", "[vout]"]  # fmt: skip
    for i in range(originals):
        args += ["-map", f"[orig{i}]"]
    args += [*BURN_IN_VIDEO_CODECS.get(suffix, DEFAULT_BURN_IN_CODEC), "-pix_fmt", "yuv420p",
             *codec, "-metadata:s:a:0", f"language={language_iso639_2}",
             "-metadata:s:a:0", f"title={title}", "-disposition:a:0", "default"]  # fmt: skip
    for index in range(1, originals + 1):
        args += [f"-disposition:a:{index}", "0"]
    args += ["-map_metadata", "0", "-map_chapters", "-1", "-movflags", "+faststart",
             "-f", _muxer_for(destination), ff(destination)]  # fmt: skip
    _run(args, "write the dubbed video with the picture slowed")


def _frame_rate(video: Path) -> str:
    """The picture's frame rate as ffprobe gives it (``25/1``, ``30000/1001``)."""
    ffprobe = require_program("ffprobe")
    result = subprocess.run(
        [ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=r_frame_rate", "-of", "csv=p=0", ff(video)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    rate = result.stdout.strip().splitlines()[0] if result.stdout.strip() else ""
    return rate if rate and rate != "0/0" else "25"


def _subtitles_fit(media: MediaInfo, suffix: str) -> bool:
    """The subtitle streams can be copied as they are into the output's container."""
    codecs = set(media.subtitle_codecs)
    if suffix in (".mp4", ".m4v", ".mov"):
        return codecs <= {"mov_text"}
    if suffix == ".webm":
        return codecs <= {"webvtt"}
    return True


def encode_audio(audio: Path, destination: Path, *, language_iso639_2: str) -> None:
    """Encode ``audio`` into the format family of ``destination``'s extension."""
    ffmpeg = require_program("ffmpeg")
    codec, extra = AUDIO_FORMATS.get(destination.suffix.lower(), ("pcm_s16le", []))
    _run(
        [
            ffmpeg,
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-i",
            ff(audio),
            "-map",
            "0:a:0",
            "-c:a",
            codec,
            *extra,
            "-metadata",
            f"language={language_iso639_2}",
            "-f",
            _muxer_for(destination),
            ff(destination),
        ],
        "write the dubbed audio",
    )


def _muxer_for(path: Path) -> str:
    """ffmpeg muxer name for an extension (needed because we write to temporary names)."""
    return {
        ".mp4": "mp4",
        ".m4v": "mp4",
        ".mov": "mov",
        ".mkv": "matroska",
        ".webm": "webm",
        ".wav": "wav",
        ".mp3": "mp3",
        ".m4a": "ipod",
        ".aac": "adts",
        ".flac": "flac",
        ".ogg": "ogg",
        ".oga": "ogg",
        ".opus": "opus",
    }.get(path.suffix.lower(), "matroska")


def filter_audio(audio: np.ndarray, sample_rate_hz: int, filtergraph: str) -> np.ndarray:
    """Run ``(channels, samples)`` float audio through an ffmpeg audio filtergraph in memory
    (raw float32 over pipes) and return the result in the same layout."""
    ffmpeg = require_program("ffmpeg")
    channels = audio.shape[0]
    raw = ["-f", "f32le", "-ar", str(sample_rate_hz), "-ac", str(channels)]
    result = subprocess.run(
        [
            ffmpeg,
            "-nostdin",
            "-v",
            "error",
            *raw,
            "-i",
            "pipe:0",
            "-af",
            filtergraph,
            *raw,
            "pipe:1",
        ],
        input=np.ascontiguousarray(audio.T, dtype="<f4").tobytes(),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip() or "no message"
        raise StageError(f"ffmpeg could not filter the audio ({filtergraph}): {message}.")
    return np.frombuffer(result.stdout, dtype="<f4").reshape(-1, channels).T.copy()


_LOUDNESS = re.compile(r"Integrated loudness:\s*I:\s*(-?[\d.]+|-inf)\s*LUFS", re.S)
_TRUE_PEAK = re.compile(r"True peak:\s*Peak:\s*(-?[\d.]+|-inf)\s*dBFS", re.S)

# Sidechain compressor settings (ffmpeg ``sidechaincompress``) keyed by ducking preset: how
# far and how fast the background goes down under the dub and comes back in the gaps.
DUCKING_PRESETS: dict[str, str] = {
    "soft": "threshold=0.05:ratio=4:attack=30:release=600:knee=4",
    "standard": "threshold=0.02:ratio=10:attack=15:release=700:knee=3",
    "cinematic": "threshold=0.01:ratio=20:attack=8:release=900:knee=2",
    # Without separation the original voices are in the background: push it further down.
    "deep": "threshold=0.004:ratio=20:attack=5:release=600:knee=1",
}
NO_SEPARATION_DUCKING = "deep"


def sidechain_duck(
    background: np.ndarray, voice: np.ndarray, sample_rate_hz: int, preset: str
) -> np.ndarray:
    """``background`` compressed by ffmpeg's ``sidechaincompress`` keyed by ``voice``
    (both ``(channels, samples)`` at the same rate and layout): a real sidechain compressor,
    so the background dips while the dub speaks and returns smoothly in its pauses."""
    import tempfile

    ffmpeg = require_program("ffmpeg")
    channels = background.shape[0]
    raw = ["-f", "f32le", "-ar", str(sample_rate_hz), "-ac", str(channels)]
    with tempfile.TemporaryDirectory(prefix="octavia-duck-") as scratch:
        main, key = Path(scratch) / "main.f32", Path(scratch) / "key.f32"
        main.write_bytes(np.ascontiguousarray(background.T, dtype="<f4").tobytes())
        key.write_bytes(np.ascontiguousarray(voice.T, dtype="<f4").tobytes())
        result = subprocess.run(
            [ffmpeg, "-nostdin", "-v", "error", *raw, "-i", ff(main), *raw, "-i", ff(key),
             "-filter_complex",
             f"[0:a][1:a]sidechaincompress={DUCKING_PRESETS[preset]}:level_sc=1:mix=1[out]",
             "-map", "[out]", *raw, "pipe:1"],
            capture_output=True, check=False,
        )  # fmt: skip
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip() or "no message"
        raise StageError(f"ffmpeg could not duck the background: {message}.")
    return np.frombuffer(result.stdout, dtype="<f4").reshape(-1, channels).T.copy()


def measure_file(
    path: Path, *, seconds: float | None = None, prefix: str = ""
) -> tuple[float, float]:
    """Integrated loudness (LUFS) and true peak (dBTP) of an audio file, streamed through
    ffmpeg's ``ebur128`` (so a two-hour file costs no memory); ``seconds`` cuts or pads it
    to that length first, ``prefix`` is a filter chain applied before measuring."""
    ffmpeg = require_program("ffmpeg")
    chain = prefix + ("," if prefix else "")
    if seconds is not None:
        chain += f"apad,atrim=end={seconds:.6f},"
    result = subprocess.run(
        [ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-i", ff(path),
         "-af", chain + "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise StageError(f"ffmpeg could not measure the loudness of {path.name}.")
    return _summary(result.stderr, path.name)


def render_mix(
    under: Path,
    voice: Path,
    outputs: dict[str, Path],
    *,
    seconds: float,
    voice_gain_db: float,
    ducking: str,
    under_pieces: list[tuple[float, float, float]] | None = None,
) -> tuple[float, float]:
    """Mix ``voice`` (brought up or down by ``voice_gain_db``) over ``under`` ducked by a
    sidechain compressor keyed by it, in one streaming ffmpeg graph, so memory does not
    grow with the length. Writes the mix (``outputs["mix"]``, not yet limited) and the
    ducked background (``"background"``) as float WAV, each ``seconds`` long; returns the
    mix's integrated loudness and true peak, for :func:`finish_mix`."""
    ffmpeg = require_program("ffmpeg")
    trim = f"apad,atrim=end={seconds:.6f},asetpts=N/SR/TB"
    duck = f"sidechaincompress={DUCKING_PRESETS[ducking]}:level_sc=1:mix=1"
    under_graph = f"[0:a]{trim}[u];"
    if under_pieces:
        under_graph = f"{audio_graph('0:a', 'us', under_pieces)};[us]{trim}[u];"
    graph = (
        f"{under_graph}[1:a]{trim},volume={voice_gain_db:.4f}dB,asplit=2[vk][vm];"
        f"[u][vk]{duck},asplit=2[bg][bo];"
        f"[bg][vm]amix=inputs=2:normalize=0,asplit=2[mix][mm];"
        f"[mm]ebur128=peak=true,anullsink"
    )
    tail = _wav_outputs({"mix": outputs["mix"], "bo": outputs["background"]})
    command = [ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-y", "-i", ff(under),
               "-i", ff(voice), "-filter_complex", graph, *tail]  # fmt: skip
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        raise _failure(command, "mix the dub", result.stderr)
    return _summary(result.stderr, "the mix")


def finish_mix(
    mix: Path,
    background: Path,
    voice: Path,
    outputs: dict[str, Path],
    *,
    final_gain_db: float,
    voice_gain_db: float,
    ceiling_db: float = -1.0,
) -> tuple[float, float]:
    """The mix that :func:`render_mix` wrote, brought up or down by ``final_gain_db`` and
    limited (look-ahead ``alimiter``) to ``ceiling_db``, into ``outputs["mix"]``; the ducked
    background and the voice at the same gain into ``"background"`` and ``"voice"``, for
    checking. Returns the finished mix's integrated loudness and true peak."""
    ffmpeg = require_program("ffmpeg")
    ceiling = 10 ** (ceiling_db / 20)
    gain = f"volume={final_gain_db:.4f}dB"
    graph = (
        f"[0:a]{gain},"
        f"alimiter=limit={ceiling:.5f}:attack=5:release=80:level=false:latency=true,"
        f"asplit=2[mix][mm];[mm]ebur128=peak=true,anullsink;"
        f"[1:a]{gain}[bo];[2:a]volume={voice_gain_db + final_gain_db:.4f}dB[vo]"
    )
    labels = {"mix": outputs["mix"], "bo": outputs["background"], "vo": outputs["voice"]}
    command = [ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-y", "-i", ff(mix),
               "-i", ff(background), "-i", ff(voice), "-filter_complex", graph,
               *_wav_outputs(labels)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        raise _failure(command, "mix the dub", result.stderr)
    return _summary(result.stderr, "the mix")


def _wav_outputs(labels: dict[str, Path]) -> list[str]:
    """ffmpeg output arguments writing each labelled pad of a graph as float WAV (RF64
    past 4 GiB: 46 minutes of 7.1)."""
    args: list[str] = []
    for label, path in labels.items():
        args += ["-map", f"[{label}]", "-c:a", "pcm_f32le", "-rf64", "auto", "-f", "wav",
                 ff(path)]  # fmt: skip
    return args


def measure_true_peak(audio: np.ndarray, sample_rate_hz: int) -> float:
    """True peak in dBTP (4x oversampled, ffmpeg ``ebur128=peak=true``)."""
    if not np.any(audio):
        return float("-inf")
    ffmpeg = require_program("ffmpeg")
    result = subprocess.run(
        [ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-f", "f32le", "-ar",
         str(sample_rate_hz), "-ac", str(audio.shape[0]), "-i", "pipe:0",
         "-af", "ebur128=peak=true", "-f", "null", "-"],
        input=np.ascontiguousarray(audio.T, dtype="<f4").tobytes(),
        capture_output=True, check=False,
    )  # fmt: skip
    match = _TRUE_PEAK.search(result.stderr.decode("utf-8", "replace"))
    if result.returncode != 0 or match is None:
        raise StageError("ffmpeg could not measure the true peak.")
    return float(match.group(1))


def measure_loudness(audio: np.ndarray, sample_rate_hz: int) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770 / EBU R128), by ffmpeg's ``ebur128``.

    We use ffmpeg's meter rather than pyloudnorm: the numbers agree to 0.1 LU on our test
    media, and pyloudnorm's import of scipy costs about 1.5 s of a 10 s dub on a small CPU.
    The samples are piped in as raw float32, so nothing is written to disk.

    Returns:
        The loudness, or -inf for silence or audio shorter than one 400 ms block.
    """
    if audio.shape[1] < int(0.4 * sample_rate_hz) or not np.any(audio):
        return float("-inf")
    ffmpeg = require_program("ffmpeg")
    interleaved = np.ascontiguousarray(audio.T, dtype="<f4").tobytes()
    result = subprocess.run(
        [
            ffmpeg,
            "-nostdin",
            "-hide_banner",
            "-nostats",
            "-f",
            "f32le",
            "-ar",
            str(sample_rate_hz),
            "-ac",
            str(audio.shape[0]),
            "-i",
            "pipe:0",
            "-af",
            "ebur128",
            "-f",
            "null",
            "-",
        ],
        input=interleaved,
        capture_output=True,
        check=False,
    )
    match = _LOUDNESS.search(result.stderr.decode("utf-8", "replace"))
    if result.returncode != 0 or match is None:
        raise StageError("ffmpeg could not measure loudness.")
    value = float(match.group(1))
    return value if value > -70.0 else float("-inf")


# Soft subtitle codec per output container (mp4 family: mov_text, the one it can hold).
SUBTITLE_CODECS: dict[str, str] = {
    ".mp4": "mov_text",
    ".m4v": "mov_text",
    ".mov": "mov_text",
    ".webm": "webvtt",
}
# Encoder for a picture with burnt-in subtitles, per output container.
BURN_IN_VIDEO_CODECS: dict[str, list[str]] = {
    ".webm": ["-c:v", "libvpx-vp9", "-crf", "32", "-b:v", "0", "-row-mt", "1"],
}
DEFAULT_BURN_IN_CODEC = ["-c:v", "libx264", "-crf", "18", "-preset", "medium"]
# Output that is the same for the same inputs: no encoder version strings or random ids.
BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact"]


def embed_subtitles(video: Path, tracks: list[tuple[Path, str, str]], destination: Path) -> None:
    """Copy every stream of ``video`` and add each ``(subtitle file, ISO 639-2 code, title)``
    as a soft subtitle track, in the codec the container of ``destination`` holds."""
    ffmpeg = require_program("ffmpeg")
    suffix = destination.suffix.lower()
    existing = len(probe(video).subtitle_codecs)
    args = [ffmpeg, "-nostdin", "-v", "error", "-y", "-i", ff(video)]
    for path, _, _ in tracks:
        args += ["-i", ff(path)]
    args += ["-map", "0"]
    for index in range(len(tracks)):
        args += ["-map", f"{index + 1}:0"]
    args += ["-c", "copy"]
    for index, (path, language, title) in enumerate(tracks):
        stream = existing + index
        codec = SUBTITLE_CODECS.get(suffix) or ("ass" if path.suffix == ".ass" else "srt")
        args += [
            f"-c:s:{stream}",
            codec,
            f"-metadata:s:s:{stream}",
            f"language={language}",
            f"-metadata:s:s:{stream}",
            f"title={title}",
        ]
    args += [*BITEXACT, "-f", _muxer_for(destination), ff(destination)]
    _run(args, "add the subtitle track")


def burn_subtitles(video: Path, subtitles: Path, destination: Path) -> None:
    """Render ``subtitles`` (an ASS file) into the picture of ``video`` with libass; every
    audio stream is copied untouched."""
    ffmpeg = require_program("ffmpeg")
    codec = BURN_IN_VIDEO_CODECS.get(destination.suffix.lower(), DEFAULT_BURN_IN_CODEC)
    # The filter's argument syntax treats ':' '\\' and quotes specially: run it beside the
    # subtitle file and give a plain relative name.
    args = [
        ffmpeg,
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-i",
        ff(video),
        "-map",
        "0:v:0",
        "-map",
        "0:a?",
        "-vf",
        f"subtitles=filename={subtitles.name}",
        *codec,
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "copy",
        "-map_metadata",
        "0",
        "-movflags",
        "+faststart",
        *BITEXACT,
        "-f",
        _muxer_for(destination),
        ff(destination),
    ]
    logger.debug("running %s", " ".join(args))
    result = subprocess.run(args, capture_output=True, check=False, cwd=subtitles.parent)
    if result.returncode != 0:
        raise _failure(args, "burn in the subtitles", result.stderr)
