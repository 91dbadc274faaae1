"""XTTS v2 for real with a tiny randomly initialised model saved as a model folder
(conditioning latents, inference, speed, long-text split), the voice library round trip,
and the bad inputs of cloning."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("TTS", reason="the xtts engine needs octavia-cli[quality]")
torch = pytest.importorskip("torch")

from octavia_cli.engines.tts.xtts import join_pieces, split_text  # noqa: E402


@pytest.fixture(scope="module")
def tiny_xtts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """config.json, model.pth and vocab.json of a 2-layer XTTS with a character vocabulary
    (generation is bounded by gpt_max_audio_tokens: random weights never stop by
    themselves)."""
    folder = tmp_path_factory.mktemp("tiny-xtts")
    config, model = build_tiny_xtts(folder)
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    config.save_json(str(folder / "config.json"))
    return folder


def build_tiny_xtts(folder: Path) -> tuple[Any, Any]:
    """A 2-layer XTTS with a character vocabulary (``folder/vocab.json``, written here):
    its config and its model, randomly initialised (seed 0), not saved."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts, XttsArgs, XttsAudioConfig

    specials = ["[STOP]", "[UNK]", "[SPACE]", "[START]", "[en]", "[es]", "[fr]", "[de]"]
    vocab = {token: i for i, token in enumerate(
        specials + list("abcdefghijklmnopqrstuvwxyzáéíóúñü0123456789.,!?'-"))}  # fmt: skip
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tokenizer.save(str(folder / "vocab.json"))
    args = XttsArgs(
        gpt_layers=2, gpt_n_model_channels=64, gpt_n_heads=2, gpt_num_audio_tokens=130,
        gpt_start_audio_token=128, gpt_stop_audio_token=129, gpt_max_audio_tokens=40,
        gpt_max_text_tokens=100, gpt_max_prompt_tokens=70, gpt_number_text_tokens=len(vocab),
        tokenizer_file=str(folder / "vocab.json"), decoder_input_dim=64, d_vector_dim=512,
        gpt_code_stride_len=1024, input_sample_rate=22050, output_sample_rate=24000,
        output_hop_length=256,
    )  # fmt: skip
    config = XttsConfig(
        model_args=args,
        audio=XttsAudioConfig(sample_rate=22050, output_sample_rate=24000),
        languages=["en", "es", "fr", "de"],
    )
    torch.manual_seed(0)
    model = Xtts(config)
    model.tokenizer = VoiceBpeTokenizer(vocab_file=str(folder / "vocab.json"))
    model.init_models()
    return config, model


@pytest.fixture
def xtts_settings(tiny_xtts: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OCTAVIA_TTS_MODEL", str(tiny_xtts))
    monkeypatch.setenv("OCTAVIA_TTS_ACCEPT_LICENSE", "true")
    monkeypatch.setenv("OCTAVIA_DEVICE", "cpu")
    # A random model never sounds like anyone: the similarity check would re-speak every
    # line up to its limit. It has its own test, which turns it back on.
    monkeypatch.setenv("OCTAVIA_TTS_MIN_SIMILARITY", "0")
    return tiny_xtts


@pytest.fixture
def fake_hearing(fake_engines):
    """The recogniser and the diarizer are the fakes of ``fakes.py`` (what XTTS makes of the
    lines is tested here, not who heard them); the translator and XTTS are real."""
    fake_engines.real.update({"speech", "translator"})
    return fake_engines


def _speech(path: Path, text: str) -> Path:
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    return path


def test_split_and_join() -> None:
    text = ("Esta es la primera frase, bastante larga. " * 6).strip()
    pieces = split_text(text, 60)
    assert all(len(p) <= 60 for p in pieces) and " ".join(pieces) == text
    assert split_text("Hola.", 60) == ["Hola."]
    joined = join_pieces([np.ones(1000, np.float32), np.ones(1000, np.float32)], 1000)
    assert len(joined) == 2000 + 120 and joined[0] == 0.0 and joined[999] == 0.0  # faded


@pytest.mark.slow
def test_clone_synthesize_and_the_voice_library(
    cli, xtts_settings: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = _speech(tmp_path / "ref.wav", "Hello, this is my voice, speaking clearly for "
                        "the recording, so that it can be cloned later.")  # fmt: skip
    code, out, err = cli("voices", "list")
    assert code == 0 and out == "" and "No stored voices yet" in err
    code, out, err = cli("clone-voice", "anna", str(reference))
    assert code == 0, err
    folder = Path(out.strip())
    code, out, _ = cli("voices", "show", "anna")
    profile = json.loads(out)
    assert profile["engine"] == "xtts" and profile["schema"] == 2
    assert (
        profile["references"][0]["speech_s"] > 2 and len(profile["references"][0]["sha256"]) == 64
    )
    # At rest, every file of the voice is sealed: no latents, no audio, no profile in clear.
    from octavia_cli.models.voices import VoiceLibrary

    latent = VoiceLibrary().conditioning("anna")["gpt_cond_latent"].numpy().tobytes()
    stored = {path.name: path.read_bytes() for path in folder.iterdir()}
    assert sorted(stored) == ["conditioning.pt.enc", "embedding.npy.enc", "profile.json.enc",
                              "reference.wav.enc"]  # fmt: skip
    for data in stored.values():
        assert data.startswith(b"OCTV1")
        assert latent[:64] not in data and b"RIFF" not in data and b"xtts" not in data
    code, out, _ = cli("voices", "list")
    assert code == 0 and out.startswith("anna\txtts")

    spoken = tmp_path / "hola.wav"
    code, _, err = cli("synthesize", "Hola a todos.", "--to", "es", "--tts-engine", "xtts",
                       "--voice", "anna", "-o", str(spoken))  # fmt: skip
    assert code == 0, err
    assert spoken.stat().st_size > 1000

    from octavia_cli.config import load_settings
    from octavia_cli.engines.tts.xtts import XttsEngine

    engine = XttsEngine(load_settings({}))
    one = engine.synthesize("hola", "es", "anna", tmp_path / "a.wav", speed=1.0)
    two = engine.synthesize("hola", "es", "anna", tmp_path / "b.wav", speed=2.0)
    assert two.duration_s < one.duration_s * 0.75  # XTTS's own rate control
    long_text = "Una frase corta, y otra. " * 8
    split = engine.synthesize(long_text, "es", "anna", tmp_path / "long.wav")
    assert split.duration_s > one.duration_s * 2  # several pieces, all spoken

    archive = tmp_path / "anna.octavia-voice"
    monkeypatch.setenv("OCTAVIA_VOICE_PASSPHRASE", "correct horse")
    assert cli("voices", "export", "anna", str(archive))[0] == 0
    assert cli("voices", "rm", "anna")[0] == 0
    code, _, err = cli("synthesize", "Hola.", "--to", "es", "--tts-engine", "xtts", "--voice",
                       "anna", "-o", str(tmp_path / "x.wav"))  # fmt: skip
    assert code == 1 and "no voice called 'anna'" in err
    code, out, _ = cli("voices", "import", str(archive))
    assert code == 0 and out.strip() == "anna"
    assert cli("voices", "show", "anna")[0] == 0


def test_clone_voice_bad_input(
    cli, xtts_settings: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    silence = tmp_path / "silence.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "anullsrc=d=8", "-y",
                    str(silence)], check=True)  # fmt: skip
    code, _, err = cli("clone-voice", "quiet", str(silence))
    assert code == 1 and "almost no speech" in err
    short = _speech(tmp_path / "short.wav", "Hi.")
    code, _, err = cli("clone-voice", "short", str(short))
    assert code == 1 and ("at least" in err or "almost no speech" in err)
    code, _, err = cli("clone-voice", "../evil", str(short))
    assert code == 1 and "not a usable voice name" in err
    code, _, err = cli("synthesize", "Hola.", "--to", "es", "--tts-engine", "xtts",
                       "-o", str(tmp_path / "x.wav"))  # fmt: skip
    assert code == 1 and "cloned voice" in err
    # A damaged profile is named, not a traceback.
    from octavia_cli.models import voices

    broken = voices.voices_dir() / "broken"
    broken.mkdir(parents=True)
    (broken / "profile.json").write_text("{not json")
    code, _, err = cli("voices", "show", "broken")
    assert code == 1 and "damaged" in err and "Traceback" not in err
    # Without the licence accepted nothing loads.
    monkeypatch.setenv("OCTAVIA_TTS_ACCEPT_LICENSE", "false")
    code, _, err = cli("clone-voice", "anna", str(short))
    assert code == 1 and "Coqui Public Model Licence" in err


@pytest.mark.slow
def test_references_of_two_voices_are_warned_about(
    cli, xtts_settings: Path, tmp_path: Path
) -> None:
    from conftest import DIALOGUE_VOICES, _espeak

    paths = []
    for who, text in (("A", "We wanted to build a library for the whole town, with a "
                       "reading room and a garden."),
                      ("B", "Almost three years, from the first plan to the opening day, "
                       "and every afternoon was full.")):  # fmt: skip
        paths.append(tmp_path / f"{who}.wav")
        _espeak(text, paths[-1], *DIALOGUE_VOICES[who])
    code, _, err = cli("clone-voice", "blend", *map(str, paths))
    assert code == 0, err
    assert "more than one voice" in err
    code, _, err = cli("clone-voice", "single", str(paths[0]), str(paths[0]), "--force")
    assert code == 0 and "different voices" not in err


@pytest.mark.slow
def test_dub_clones_the_speaker_from_the_source(
    cli, xtts_settings: Path, talk: Path, fake_hearing
) -> None:
    code, _, err = cli("dub", str(talk), "--to", "es", "--from", "en", "--tts-engine", "xtts")
    assert code == 0, err
    folder = talk.with_name("talk.octavia")
    project = json.loads((folder / "project.json").read_text())
    (clone,) = (folder / "voices").glob("S1.*.pt")  # cloned once, for every line
    voice = f"voices/{clone.name}"
    assert project["stages"]["synthesize:es"]["info"]["voices"] == {"S1": voice}
    clips = [s["clips"]["es"] for s in project["transcript"]["segments"]]
    assert all(c["engine"] == "xtts" and c["voice"] == voice for c in clips)
    # Cloned from the spans the diarize stage chose for the speaker.
    (speaker,) = project["speakers"]
    assert speaker["reference"] and clone.with_suffix(".reference.wav").exists()
    # The engine's own rate is used first when a clip comes out longer than its slot.
    assert all(1.0 <= clip["tts_speed"] <= 1.25 for clip in clips)
    # A stored voice for the speaker replaces the automatic clone.
    reference = _speech(talk.parent / "ref.wav", "Hello, this is my voice, speaking clearly "
                        "for the recording, so that it can be cloned later.")  # fmt: skip
    assert cli("clone-voice", "anna", str(reference))[0] == 0
    code, _, err = cli("dub", str(talk), "--to", "es", "--from", "en", "--tts-engine", "xtts",
                       "--voice", "S1=anna", "--force")  # fmt: skip
    assert code == 0, err
    project = json.loads((folder / "project.json").read_text())
    assert {s["clips"]["es"]["voice"] for s in project["transcript"]["segments"]} == {"anna"}
    code, _, err = cli("dub", str(talk), "--to", "es", "--tts-engine", "xtts", "--voice",
                       "S1=nobody", "--force")  # fmt: skip
    assert code == 1 and "no voice called 'nobody'" in err
    # A speaker of the project becomes a stored voice, cloned from their reference spans.
    code, out, err = cli("clone-voice", "talker", "--from-project", str(folder), "--speaker", "S1")
    assert code == 0, err
    assert (Path(out.strip()) / "profile.json.enc").exists()
    code, _, err = cli("clone-voice", "ghost", "--from-project", str(folder), "--speaker", "S9")
    assert code == 1 and "has no speaker 'S9'" in err and "S1 (S1)" in err
    code, _, err = cli("clone-voice", "both", str(reference), "--from-project", str(folder),
                       "--speaker", "S1")  # fmt: skip
    assert code == 1 and "--from-project takes --speaker and no recordings" in err
    code, _, err = cli("clone-voice", "nothing")
    assert code == 1 and "No recordings given" in err


@pytest.mark.slow
def test_the_same_person_keeps_the_same_voice_across_episodes(
    cli, xtts_settings: Path, talk: Path, fake_hearing
) -> None:
    """--save-voices stores the speaker a dub cloned; the next episode with the same person
    finds them ("S1 -> talk-S1 (0.9x)") and speaks with that voice; --no-match-voices clones
    again."""
    import shutil

    from octavia_cli.models.voices import VoiceLibrary

    code, _, err = cli("dub", str(talk), "--to", "es", "--from", "en", "--tts-engine", "xtts",
                       "--save-voices")  # fmt: skip
    assert code == 0, err
    assert "S1 saved as voice 'talk-S1'" in err
    (saved,) = VoiceLibrary().list_voices()
    assert saved.name == "talk-S1" and saved.source == "talk.mp4 S1"
    assert VoiceLibrary().embedding("talk-S1") is not None
    episode = Path(shutil.copy(talk, talk.with_name("episode2.mp4")))
    code, _, err = cli("dub", str(episode), "--to", "es", "--from", "en", "--tts-engine", "xtts",
                       "--save-voices")  # fmt: skip
    assert code == 0, err
    assert "S1 -> talk-S1 (0.9" in err or "S1 -> talk-S1 (1.0" in err, err
    project = json.loads((episode.with_name("episode2.octavia") / "project.json").read_text())
    assert {s["clips"]["es"]["voice"] for s in project["transcript"]["segments"]} == {"talk-S1"}
    assert [v.name for v in VoiceLibrary().list_voices()] == ["talk-S1"]  # nobody new
    code, _, err = cli("dub", str(episode), "--to", "es", "--from", "en", "--tts-engine", "xtts",
                       "--no-match-voices", "--force")  # fmt: skip
    assert code == 0 and "->" not in err, err
    project = json.loads((episode.with_name("episode2.octavia") / "project.json").read_text())
    assert all(s["clips"]["es"]["voice"].endswith(".pt")
               for s in project["transcript"]["segments"])  # fmt: skip


@pytest.mark.slow
def test_xtts_lines_go_through_the_retake_loop(
    cli, xtts_settings: Path, talk: Path, monkeypatch: pytest.MonkeyPatch, fake_hearing
) -> None:
    """A random model says nothing a recogniser can hear and sounds like nobody: with the
    checks on (the real Whisper base hearing, the similarity check demanding 0.99), every
    line is spoken again up to the limit, each take's scores are recorded, and every line is
    kept, flagged. With the checks off, each line is synthesized once."""
    pytest.importorskip("resemblyzer")
    monkeypatch.setenv("OCTAVIA_QA_MODE", "all")
    monkeypatch.setenv("OCTAVIA_TTS_MIN_SIMILARITY", "0.99")
    monkeypatch.setenv("OCTAVIA_TTS_MAX_ATTEMPTS", "2")
    code, _, err = cli("dub", str(talk), "--to", "es", "--from", "en", "--tts-engine", "xtts")
    assert code == 0, err
    folder = talk.with_name("talk.octavia")
    segments = json.loads((folder / "project.json").read_text())["transcript"]["segments"]
    for segment in segments:
        check = segment["checks"]["es"]
        assert [take["take"] for take in check["takes"]] == [0, 1] and check["flagged"]
        for take in check["takes"]:
            assert not take["passed"] and take["cer"] >= 0.0 and take["duration_ratio"] > 0
            assert -1.0 <= take["similarity"] < 0.99
            assert any("unlike its voice" in p for p in take["problems"])
            assert (folder / take["path"]).exists()
        assert segment["clips"]["es"]["take"] == check["chosen"]  # the best take kept
        assert (folder / segment["fits"]["es"]["path"]).exists()  # and fitted: not dropped
    assert list((folder / "voices").glob("S1.*.reference.embedding.npy"))
    assert f"{len(segments)} lines checked, {len(segments)} spoken again" in err
    monkeypatch.setenv("OCTAVIA_QA_MODE", "off")
    code, _, err = cli("dub", str(talk), "--to", "de", "--from", "en", "--tts-engine", "xtts",
                       "-o", str(talk.with_name("talk.de.mp4")))  # fmt: skip
    # (English to German has no Apertium pair here: refused before any stage.)
    assert code == 1 and "German" in err


@pytest.fixture
def counted_xtts(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many XTTS engines were built and how many are alive (built, not closed), at
    most: the real engine, counted around its constructor and close()."""
    from octavia_cli.engines.tts.xtts import XttsEngine

    counts = {"built": 0, "alive": 0, "most_alive": 0}
    build, close = XttsEngine.__init__, XttsEngine.close

    def counting_init(self, *args, **kwargs):
        build(self, *args, **kwargs)
        counts["built"] += 1
        counts["alive"] += 1
        counts["most_alive"] = max(counts["most_alive"], counts["alive"])

    def counting_close(self):
        if getattr(self, "_counted_closed", False) is False:
            self._counted_closed = True
            counts["alive"] -= 1
        close(self)

    monkeypatch.setattr(XttsEngine, "__init__", counting_init)
    monkeypatch.setattr(XttsEngine, "close", counting_close)
    return counts


@pytest.mark.slow
def test_a_dub_with_a_stored_voice_holds_one_speech_engine(
    cli, xtts_settings: Path, talk: Path, counted_xtts: dict[str, int], monkeypatch, fake_hearing
) -> None:
    """Length control measures the stored voice's rate with the engine that then speaks the
    lines: one XTTS for the whole dub (there were two, one never closed), closed at its end."""
    reference = _speech(talk.parent / "ref.wav", "Hello, this is my voice, speaking clearly "
                        "for the recording, so that it can be cloned later.")  # fmt: skip
    assert cli("clone-voice", "anna", str(reference))[0] == 0
    counted_xtts.update(built=0, alive=0, most_alive=0)
    monkeypatch.setenv("OCTAVIA_MT_LENGTH_CONTROL", "true")
    code, _, err = cli("dub", str(talk), "--to", "es", "--from", "en", "--tts-engine", "xtts",
                       "--voice", "anna")  # fmt: skip
    assert code == 0, err
    assert counted_xtts == {"built": 1, "alive": 0, "most_alive": 1}


@pytest.mark.slow
def test_a_worker_running_two_xtts_jobs_builds_the_engine_once(
    cli,
    xtts_settings: Path,
    tmp_path: Path,
    counted_xtts: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A serve worker's runner keeps the speech engine between jobs (the synthesize stage
    used to build its own for every job)."""
    from octavia_cli.pipeline import Runner
    from octavia_cli.server.jobs import key_library, run_job
    from octavia_cli.server.store import Job

    reference = _speech(tmp_path / "ref.wav", "Hello, this is my voice, speaking clearly for "
                        "the recording, so that it can be cloned later.")  # fmt: skip
    # The voice is in the library of the jobs' key (an open server's: voices/local).
    library = key_library(tmp_path / "jobs" / "job0", None)
    monkeypatch.setenv("OCTAVIA_TTS_VOICE_LIBRARY", library)
    assert cli("clone-voice", "anna", str(reference))[0] == 0
    monkeypatch.delenv("OCTAVIA_TTS_VOICE_LIBRARY")
    counted_xtts.update(built=0, alive=0, most_alive=0)
    with Runner(keep=True) as runner:
        for index, text in enumerate(("Hola a todos.", "Buenos días.")):
            job = Job(f"job{index}", None, "synthesize", "running",
                      {"text": text, "to": "es", "voice": "anna"}, "", 0.0)  # fmt: skip
            folder = tmp_path / "jobs" / job.id
            results = run_job(job, None, folder, lambda event: None, None, runner)  # type: ignore[arg-type]
            assert results[0]["name"] == "speech.es.wav" and results[0]["size"] > 1000
        assert counted_xtts["built"] == 1 and runner.built["speech"] == 1
        assert counted_xtts["alive"] == 1  # kept for the next job
    assert counted_xtts["alive"] == 0  # the worker's runner closed it when it stopped


def test_a_parked_xtts_goes_back_to_its_device_when_it_next_speaks(
    xtts_settings: Path, tmp_path: Path
) -> None:
    """The real model: parked (on a CPU the move is to the same place), then speaking moves
    it back and clears the mark; parking before it ever loaded is nothing."""
    from octavia_cli.config import load_settings
    from octavia_cli.engines.tts.xtts import XttsEngine

    engine = XttsEngine(load_settings({}))
    engine.to_cpu()
    assert engine._parked is False  # nothing loaded, nothing parked
    reference = _speech(tmp_path / "ref.wav", "Hello, this is my voice, speaking clearly.")
    voice = tmp_path / "voice.pt"
    torch.save(engine.clone([reference]), voice)
    engine.to_cpu()
    assert engine._parked is True
    engine.synthesize("hola", "es", str(voice), tmp_path / "a.wav")
    assert engine._parked is False and (tmp_path / "a.wav").stat().st_size > 1000
