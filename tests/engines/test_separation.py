"""demucs separation with a tiny random HTDemucs: the real engine code (blocks, context,
cross-fades, resampling, normalisation, writing) on generated music and speech."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("demucs")
soundfile = pytest.importorskip("soundfile")

from hub_layout import no_network  # noqa: E402, F401 (a fixture)
from octavia_cli.engines.separation.demucs import DemucsSeparator  # noqa: E402


@pytest.fixture(scope="module")
def tiny_htdemucs():
    import torch
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(0)
    model = HTDemucs(
        sources=["drums", "bass", "other", "vocals"], channels=8, t_layers=1, t_heads=2,
        bottom_channels=0, segment=4,
    )  # fmt: skip
    return model.eval()


def _music_and_speech(path: Path, rate: int, channels: int, seconds: float) -> Path:
    """A chord with a beat under espeak-ng speech, at ``rate`` Hz and ``channels``."""
    speech = path.with_suffix(".speech.wav")
    subprocess.run(
        ["espeak-ng", "-w", str(speech), "The library opens its new music room next week."],
        check=True, capture_output=True,
    )  # fmt: skip
    graph = (
        f"sine=f=220:d={seconds}[a];sine=f=330:d={seconds}[b];"
        f"anoisesrc=d={seconds}:a=0.05,volume='if(lt(mod(t,0.5),0.05),1,0)':eval=frame[c];"
        "[1:a]adelay=1000:all=1[s];[a][b][c][s]amix=inputs=4:normalize=0,"
        f"atrim=0:{seconds}"
    )
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc", "-i", str(speech),
         "-filter_complex", graph, "-ar", str(rate), "-ac", str(channels), str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("rate", "channels"), [(48_000, 2), (22_050, 1)])
def test_writes_both_stems_at_the_source_rate_and_layout(
    tmp_path: Path, tiny_htdemucs, rate: int, channels: int
) -> None:
    source = _music_and_speech(tmp_path / "mix.wav", rate, channels, 23.0)
    progress: list[float] = []
    separator = DemucsSeparator(model=tiny_htdemucs, block_s=10.0)
    separator.separate(
        source, tmp_path / "v.wav", tmp_path / "b.wav", lambda done, total: progress.append(done)
    )
    frames = soundfile.info(str(source)).frames
    for name in ("v.wav", "b.wav"):
        info = soundfile.info(str(tmp_path / name))
        assert (info.samplerate, info.channels, info.frames) == (rate, channels, frames)
        audio, _ = soundfile.read(str(tmp_path / name))
        assert np.isfinite(audio).all() and np.abs(audio).max() > 0
    assert progress == pytest.approx([10.0, 20.0, frames / rate])


@pytest.mark.slow
def test_block_joins_are_cross_faded_without_clicks(tmp_path: Path, tiny_htdemucs) -> None:
    rate = 48_000
    source = _music_and_speech(tmp_path / "mix.wav", rate, 2, 25.0)
    blocks = DemucsSeparator(model=tiny_htdemucs, block_s=10.0)
    blocks.separate(source, tmp_path / "v.wav", tmp_path / "b.wav", lambda *_: None)
    whole = DemucsSeparator(model=tiny_htdemucs, block_s=100.0)
    whole.separate(source, tmp_path / "v1.wav", tmp_path / "b1.wav", lambda *_: None)
    for name in ("v.wav", "b.wav"):
        audio, _ = soundfile.read(str(tmp_path / name))
        step = np.abs(np.diff(audio[:, 0]))
        typical = np.quantile(step, 0.999)
        for join in (10 * rate, 20 * rate):
            assert step[join - 240 : join + 240].max() <= 1.5 * typical
    # Blocked and whole-file separations differ (the model sees other context) but the
    # same music comes out: the background keeps its level everywhere.
    blocked, _ = soundfile.read(str(tmp_path / "b.wav"))
    single, _ = soundfile.read(str(tmp_path / "b1.wav"))
    for second in range(1, 24):
        piece = slice(second * rate, (second + 1) * rate)
        ratio = np.sqrt(np.mean(blocked[piece] ** 2) / np.mean(single[piece] ** 2))
        assert 0.5 < ratio < 2.0


def test_a_missing_model_names_the_pull_command(no_network: list[str]) -> None:  # noqa: F811
    """Offline with an empty cache: the pull command, at once, without demucs falling back
    to its own download site (it did, waiting for a connection timeout, and would have put
    the model where the catalog never looks)."""
    from octavia_cli.errors import MissingModelError

    with pytest.raises(MissingModelError, match="octavia models pull htdemucs"):
        DemucsSeparator("htdemucs").model()  # HF_HUB_OFFLINE=1 and an empty cache
    assert no_network == []


def test_surround_separates_the_centre_and_keeps_the_rest(tmp_path: Path, tiny_htdemucs) -> None:
    stereo = _music_and_speech(tmp_path / "mix.wav", 48_000, 2, 12.0)
    audio, rate = soundfile.read(str(stereo), dtype="float32")
    surround = np.zeros((len(audio), 6), np.float32)
    surround[:, 0], surround[:, 1], surround[:, 2] = audio[:, 0], audio[:, 1], audio.mean(axis=1)
    surround[:, 4:] = 0.3 * audio
    source = tmp_path / "surround.wav"
    soundfile.write(str(source), surround, rate, subtype="FLOAT")
    DemucsSeparator(model=tiny_htdemucs, block_s=10.0).separate(
        source, tmp_path / "v.wav", tmp_path / "b.wav", lambda *_: None
    )
    vocals, _ = soundfile.read(str(tmp_path / "v.wav"), dtype="float32")
    background, _ = soundfile.read(str(tmp_path / "b.wav"), dtype="float32")
    assert vocals.shape == background.shape == surround.shape
    others = [0, 1, 3, 4, 5]
    assert not vocals[:, others].any() and vocals[:, 2].any()  # speech only from the centre
    assert np.allclose(background[:, others], surround[:, others])  # the rest as it was
