"""Test isolation and media the tests make themselves.

Every test runs with its own config file, no network model hub (``HF_HUB_OFFLINE=1``) and
caches under pytest's temporary folder. The bundled Whisper model is assembled once per
session into a shared cache, since that costs a second or two.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# huggingface_hub reads HF_HUB_OFFLINE once, when it is first imported: set it before any
# test imports it, so that a test that takes the variable away (to see Octavia tell an
# unreachable hub from downloads turned off) does not leave the library online for every
# test after it (each then waited for a connection timeout).
os.environ["HF_HUB_OFFLINE"] = "1"

SAMPLE_LINES = (
    (0.5, "Welcome to the city library."),
    (3.0, "Today we talk about old books."),
    (5.5, "The new room opens next week."),
    (8.0, "Thank you for watching."),
)


def _cuda_available() -> bool:
    from octavia_cli.devices import cuda_available

    return cuda_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` run only where a CUDA GPU is usable."""
    if any(item.get_closest_marker("gpu") for item in items) and not _cuda_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if item.get_closest_marker("gpu"):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models-cache")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_cache: Path) -> None:
    isolate(tmp_path / "home", monkeypatch, session_cache)


@pytest.fixture(scope="module")
def isolated_module(
    tmp_path_factory: pytest.TempPathFactory, session_cache: Path
) -> Iterator[None]:
    """The same isolation for a module-scoped fixture (made before the per-test one)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate(tmp_path_factory.mktemp("home"), monkeypatch, session_cache)
        yield


def isolate(home: Path, monkeypatch: pytest.MonkeyPatch, session_cache: Path) -> None:
    home.mkdir(exist_ok=True)
    for name in list(os.environ):
        if name.startswith("OCTAVIA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OCTAVIA_CONFIG", str(home / "config.toml"))
    monkeypatch.setenv("OCTAVIA_MODELS_CACHE_DIR", str(session_cache))
    # The tests run the offline engines, also on a machine where `auto` would pick quality.
    monkeypatch.setenv("OCTAVIA_PRESET", "offline")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    # espeak-ng writes PulseAudio files under these even when writing to a file.
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))  # the voice library
    # The voice key goes to a file under XDG_CONFIG_HOME, never to the OS keyring of the
    # machine running the tests (test_voice_library tests the keyring with one in memory).
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")


def _espeak(
    text: str, destination: Path, voice: str = "en-us", pitch: int = 50, speed: int = 160
) -> None:
    subprocess.run(
        [
            "espeak-ng",
            "-v",
            voice,
            "-s",
            str(speed),
            "-p",
            str(pitch),
            "-w",
            str(destination),
            text,
        ],
        check=True,
        capture_output=True,
    )


def make_media(
    path: Path,
    lines: tuple[tuple, ...] = SAMPLE_LINES,
    *,
    duration_s: float = 10.0,
    video: bool = True,
    audio: bool = True,
    bed: bool = True,
    audio_codec: list[str] | None = None,
) -> Path:
    """Make a clip: espeak-ng sentences at the given start times over a quiet chord, on an
    ffmpeg test pattern when ``video``. A line is ``(start_s, text)`` or ``(start_s, text,
    voice, pitch[, words_per_minute])``. Returns ``path``."""
    work = path.parent / f".{path.stem}-parts"
    work.mkdir(parents=True, exist_ok=True)
    args = ["ffmpeg", "-v", "error", "-y"]
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc2=size=320x180:rate=25:duration={duration_s}"]
    if not audio:
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)]
        subprocess.run(args, check=True)
        return path
    first_audio = 1 if video else 0
    chains, labels = [], []
    for index, (start, text, *voice) in enumerate(lines):
        wav = work / f"line{index}.wav"
        _espeak(text, wav, *voice)
        args += ["-i", str(wav)]
        chains.append(
            f"[{first_audio + index}:a]aresample=48000,adelay={int(start * 1000)}:all=1[l{index}]"
        )
        labels.append(f"[l{index}]")
    level = "0.03" if bed else "0"
    chains.append(f"sine=f=220:d={duration_s},volume={level}[bed]")
    labels.append("[bed]")
    graph = (
        ";".join(chains)
        + ";"
        + "".join(labels)
        + (
            f"amix=inputs={len(labels)}:normalize=0:duration=longest,atrim=0:{duration_s},"
            "aformat=channel_layouts=stereo[a]"
        )
    )
    args += ["-filter_complex", graph]
    if video:
        args += [
            "-map",
            "0:v",
            "-map",
            "[a]",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ]
    else:
        args += ["-map", "[a]", *(audio_codec or [])]
    args += ["-ar", "48000", str(path)]
    subprocess.run(args, check=True)
    shutil.rmtree(work)
    return path


# Two clearly different synthetic speakers: (espeak-ng voice, pitch).
DIALOGUE_VOICES = {"A": ("en-us+m3", 30), "B": ("en-us+f4", 80), "C": ("en-us+m7", 60)}
DIALOGUE_SENTENCES = (
    "Good morning, and thank you for coming in today.",
    "It is a pleasure to be here.",
    "Tell me how the project started.",
    "We wanted to build a library for the whole town.",
    "How long did the building take?",
    "Almost three years, from the first plan to the opening.",
    "What surprised you the most?",
    "The children came every single afternoon.",
    "Do you have plans for next year?",
    "Yes, we will open a music room on the second floor.",
    "That sounds wonderful.",
    "Thank you, we are very proud of it.",
)


def dialogue_lines(duration_s: float, seed: int = 7, speakers: str = "AB") -> tuple[tuple, ...]:
    """Turns of ``speakers`` in rotation (now and then one speaks twice), with pauses of 0.3
    to 1.0 s: ``(start_s, text, voice, pitch, speaker)``."""
    import random

    rng = random.Random(seed)
    lines, t, turn, index = [], 0.5, 0, 0
    while True:
        speaker = speakers[turn % len(speakers)]
        text = DIALOGUE_SENTENCES[index % len(DIALOGUE_SENTENCES)]
        length = speech_seconds(text, *DIALOGUE_VOICES[speaker])
        if t + length > duration_s - 0.3:
            break
        lines.append((round(t, 2), text, *DIALOGUE_VOICES[speaker], speaker))
        t += length + rng.uniform(0.3, 1.0)
        index += 1
        if rng.random() > 0.15:
            turn += 1
    return tuple(lines)


def speech_seconds(text: str, voice: str, pitch: int) -> float:
    """How long espeak-ng's WAV of ``text`` is."""
    return speech_span(text, voice, pitch)[2]


@functools.lru_cache(maxsize=256)
def speech_span(text: str, voice: str, pitch: int) -> tuple[float, float, float]:
    """Where the sound of espeak-ng's WAV of ``text`` starts and ends, and its length."""
    import numpy as np
    import soundfile

    with tempfile.TemporaryDirectory() as scratch:
        wav = Path(scratch) / "line.wav"
        _espeak(text, wav, voice, pitch)
        audio, rate = soundfile.read(str(wav), dtype="float32")
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    return loud[0] / rate, (loud[-1] + 1) / rate, len(audio) / rate


def make_dialogue(
    path: Path, duration_s: float, speakers: str = "AB", **kwargs: object
) -> tuple[Path, list[tuple]]:
    """A dialogue clip (two speakers unless told) and its reference turns
    ``(start_s, end_s, speaker)``."""
    lines = dialogue_lines(duration_s, speakers=speakers)
    make_media(path, tuple(line[:4] for line in lines), duration_s=duration_s, **kwargs)
    turns = []
    for start, text, voice, pitch, speaker in lines:
        lead, end, _ = speech_span(text, voice, pitch)
        turns.append((round(start + lead, 3), round(start + end, 3), speaker))
    return path, turns


@pytest.fixture(scope="session")
def sample_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10 s single-speaker English clip (made once; copy it before dubbing)."""
    return make_media(tmp_path_factory.mktemp("media") / "talk.mp4")


@pytest.fixture
def talk(tmp_path: Path, sample_video: Path) -> Path:
    """A fresh copy of the sample video in this test's folder."""
    copy = tmp_path / "work" / "talk.mp4"
    copy.parent.mkdir()
    shutil.copy(sample_video, copy)
    return copy


@pytest.fixture
def media_factory(tmp_path: Path) -> Callable[..., Path]:
    def factory(name: str, **kwargs: object) -> Path:
        return make_media(tmp_path / name, **kwargs)  # type: ignore[arg-type]

    return factory


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``octavia ARGS`` in-process through the real error boundary, with one plain
    progress line per stage on stderr (so tests can see which stages ran)."""
    from octavia_cli.cli import run

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = run(["--progress", "plain", *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


@pytest.fixture
def fake_engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Every runner built in this test gets the cheap engines of ``tests/fakes.py`` (for
    tests of the plumbing around the engines, not of the engines). Returns them, so a test
    can set the script, the speakers, or look at what they were asked."""
    from fakes import FakeEngines
    from octavia_cli.pipeline import runner

    engines = FakeEngines()
    monkeypatch.setattr(runner, "FACTORIES", engines.factories())
    # No line checks: the fake recogniser reads a script, and the fake voice says nothing
    # a recogniser could hear. (A test that checks lines turns them on: the checker is the
    # real one.)
    monkeypatch.setenv("OCTAVIA_QA_MODE", "off")
    yield engines
