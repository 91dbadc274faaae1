"""Lip-sync (``--lip-sync``): the mouth of the one face on screen follows the dub, where
that face is the one speaking; every other frame is left as it was.

The stage runs after ``mix`` and before ``mux``, in three passes over the picture, each a
frame at a time:

1. **Faces** (once per project, kept in ``lipsync/faces.npz``): shots by ffmpeg's scene
   score, frontal faces found and tracked through each shot, and each track's mouth
   movement (``engines/lipsync/faces.py``).
2. **Decisions** (per language): a shot is lip-synced when exactly one face is seen in it,
   big enough, and its mouth moves with one speaker's speech; that speaker's lines (the
   source's and the dub's, whichever is longer) are the frames re-drawn. The others are
   left, each with its reason: no face, several faces, face too small, off-screen speaker,
   no speech.
3. **Render**: each shot is encoded on its own (``lipsync/LANG/shots/NNNN.mkv``) and the
   shots joined, so an interrupted run resumes at the first shot not finished. A shot whose
   rendering fails is encoded from its original frames, with a warning.

The engine re-draws an upright square crop of the lower face (``engines/lipsync``); the
crop is blended back under a feathered ellipse over the lower half of the face, in the
frame's own pixel format (``media/video.py``), so pixels outside it keep their exact values.
"""

from __future__ import annotations

import bisect
import functools
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from octavia_cli.engines.lipsync.base import LipSyncEngine
from octavia_cli.engines.lipsync.faces import (
    DETECTIONS_PER_S,
    WORK_HEIGHT,
    FaceDetector,
    Shot,
    ShotFaces,
    detect_shots,
    link_tracks,
    mouth_and_eyes,
    smooth_movement,
    speaking,
)
from octavia_cli.errors import MissingDependencyError, MissingModelError, OctaviaError
from octavia_cli.files import atomic_path, remove_stale_temporaries
from octavia_cli.media.audio import read_audio
from octavia_cli.media.video import (
    Frame,
    FrameReader,
    FrameWriter,
    GrayReader,
    VideoInfo,
    blend_rgb,
    concat_videos,
    marks_rotation,
    probe_video,
    region_to_rgb,
)
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project.manifest import Project
from octavia_cli.project.records import LipSyncInfo, stable_hash

logger = logging.getLogger(__name__)

FACES = "lipsync/faces.npz"
SAMPLE_RATE_HZ = 16_000
PAD_S = 0.1  # frames re-drawn before and after a speaker's line
RAMP_FRAMES = 3  # the blend fades in and out over this many frames at a span's edges
AUDIO_MARGIN_S = 1.0  # audio read around a piece (the engine's window looks 0.1 s each side)
CHUNK_S = 25.0  # a shot's audio is heard this much at a time (with the margins: one Whisper
# window of 30 s)
FACES_VERSION = 1


class Reason:
    SYNCED = "lip-synced"
    NO_FACE = "no face"
    SEVERAL = "several faces"
    SMALL = "face too small"
    OFF_SCREEN = "off-screen speaker"
    NO_SPEECH = "no speech"
    FAILED = "failed"


@dataclass(frozen=True)
class LipSyncOptions:
    crf: int = 18  # x264's quality of the re-encoded picture (0: lossless)
    preset: str = "medium"
    min_face_px: int = 80  # faces shorter than this (in coded pixels) are left


def stage_name(target: str) -> str:
    return f"lipsync:{target}"


def picture_path(target: str) -> str:
    return f"lipsync/{target}/picture.mkv"


def lipsync(
    project: Project, source: Path, target: str, engine: LipSyncEngine, options: LipSyncOptions,
    hook: ProgressHook,
) -> LipSyncInfo:  # fmt: skip
    """Lip-sync ``target``'s dub into the picture of ``source``; the info says where the
    new picture is (``picture``, "" when no shot needed it: the original is kept)."""
    reporter = StageReporter(hook, stage_name(target))
    transcript = project.require_transcript()
    segments = sorted(transcript.segments, key=lambda s: s.start_s)
    lines = [(s.speaker, s.start_s, s.end_s, s.fits.get(target)) for s in segments]
    inputs = stable_hash(
        project.stages["extract"].inputs_hash, engine.describe(),
        [(s.speaker, s.start_s, s.end_s, f.key if f else "") for s in segments
         for f in [s.fits.get(target)]],
        options.crf, options.preset, options.min_face_px, FACES_VERSION,
    )  # fmt: skip
    record = project.stages.get(stage_name(target))
    picture = project.path(picture_path(target))
    if project.is_current(stage_name(target), inputs) and record is not None:
        info: LipSyncInfo = record.info
        if not info.picture or picture.exists():
            reporter.skipped()
            return info
    began = time.monotonic()
    video = probe_video(source)
    reporter.started(total=1.0, message="finding faces")
    faces = _faces(project, source, video, reporter)
    shots = [_decide(shot, video, lines, options) for shot in faces]
    chosen = [s for s in shots if s.reason == Reason.SYNCED]
    info = LipSyncInfo(engine=engine.describe(), picture="", shots=[s.to_dict(video)
                       for s in shots])  # fmt: skip
    if chosen:
        engine.check()
        folder = project.path(f"lipsync/{target}/shots")
        folder.mkdir(parents=True, exist_ok=True)
        done_file = folder / "done.json"
        done = _read_done(done_file, inputs)
        _render(project, source, video, shots, engine, options, folder, done,
                (done_file, inputs), reporter)  # fmt: skip
        for plan in shots:
            if plan.failed:
                plan.reason = Reason.FAILED
        info.shots = [s.to_dict(video) for s in shots]
        remove_stale_temporaries(picture)
        with atomic_path(picture) as tmp:
            concat_videos([folder / f"{i:04d}.mkv" for i in range(len(shots))], tmp)
        info.picture = picture_path(target)
        info.rotation = video.rotation if marks_rotation() else 0
    synced = sum(1 for s in shots if s.reason == Reason.SYNCED)
    info.synced_shots = synced
    info.synced_frames = sum(s.frames_synced for s in shots if s.reason == Reason.SYNCED)
    project.mark_done(stage_name(target), inputs, time.monotonic() - began, info)
    left = [s for s in shots if s.reason != Reason.SYNCED]
    reporter.done(f"{synced} of {len(shots)} shot(s) lip-synced"
                  + (f", {len(left)} left as they were" if left else ""))  # fmt: skip
    return info


# -- pass 1: faces ---------------------------------------------------------------------------


def _faces(
    project: Project, source: Path, video: VideoInfo, reporter: StageReporter
) -> list[ShotFaces]:
    """Shots, face tracks and mouth movement of ``source``, from the project's cache when
    they were found for this very picture before."""
    cache = project.path(FACES)
    key = stable_hash(project.stages["extract"].inputs_hash, FACES_VERSION, video.frames)
    if cache.exists():
        try:
            return _load_faces(cache, key)
        except (KeyError, ValueError, OSError):
            logger.info("the face cache is unreadable: faces are found again")
    rate = float(video.frame_rate)
    shots = detect_shots(source, rate, video.frames)
    detector = FaceDetector()
    stride = max(1, round(rate / DETECTIONS_PER_S))
    # Each shot's detections, by frame in the shot (its first frame always looked at).
    detections: list[dict[int, np.ndarray]] = [{} for _ in shots]
    starts = [shot.start for shot in shots]
    with GrayReader(source, video, WORK_HEIGHT) as reader:
        for index, gray in reader:
            at = bisect.bisect_right(starts, index) - 1
            if at >= 0 and ((index - starts[at]) % stride == 0):
                detections[at][index - starts[at]] = detector(gray) * reader.scale
            if index % 250 == 0:
                reporter.advance(0.3 * index / max(video.frames, 1), message="finding faces")
    found = [
        ShotFaces(shot, link_tracks(mine, shot.end - shot.start, rate))
        for shot, mine in zip(shots, detections, strict=True)
    ]
    _measure_mouths(source, video, found, reporter)
    _save_faces(cache, key, found)
    return found


def upright(plane: np.ndarray, rotation: int) -> np.ndarray:
    """A plane as it is displayed (``rotation`` degrees counter-clockwise)."""
    return np.rot90(plane, k=(rotation // 90) % 4) if rotation else plane


def _measure_mouths(source: Path, video: VideoInfo, found: list[ShotFaces],
                    reporter: StageReporter) -> None:  # fmt: skip
    """Each track's mouth movement per frame (a second pass: the boxes are smoothed)."""
    rate = float(video.frame_rate)
    wanted = [f for f in found if len(f.tracks) == 1]
    for item in found:
        item.mouth = [np.full(item.shot.end - item.shot.start, np.nan) for _ in item.tracks]
    if not wanted:
        return
    previous: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    by_frame: dict[int, ShotFaces] = {}
    for item in wanted:
        for index in range(item.shot.start, item.shot.end):
            by_frame[index] = item
    with GrayReader(source, video, WORK_HEIGHT) as reader:
        for index, gray in reader:
            current = by_frame.get(index)
            if current is None:
                continue
            item = current
            offset = index - item.shot.start
            box = item.tracks[0].boxes[offset]
            if np.isnan(box[0]):
                previous.pop(id(item), None)
                continue
            mouth, eyes = mouth_and_eyes(gray, box / reader.scale)
            if id(item) in previous and offset > 0:
                last_mouth, last_eyes = previous[id(item)]
                moved = np.abs(mouth - last_mouth).mean() - np.abs(eyes - last_eyes).mean()
                item.mouth[0][offset] = max(0.0, float(moved))
            previous[id(item)] = (mouth, eyes)
            if index % 250 == 0:
                reporter.advance(0.3 + 0.1 * index / max(video.frames, 1),
                                 message="watching mouths")  # fmt: skip
    for item in wanted:
        item.mouth[0] = smooth_movement(item.mouth[0], rate)


def _save_faces(path: Path, key: str, found: list[ShotFaces]) -> None:
    arrays: dict[str, Any] = {"key": np.array(key)}
    arrays["shots"] = np.array([[f.shot.start, f.shot.end] for f in found], dtype=np.int64)
    for i, item in enumerate(found):
        for j, track in enumerate(item.tracks):
            arrays[f"box_{i}_{j}"] = track.boxes
            arrays[f"mouth_{i}_{j}"] = item.mouth[j]
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def _load_faces(path: Path, key: str) -> list[ShotFaces]:
    from octavia_cli.engines.lipsync.faces import Track

    with np.load(path) as data:
        if str(data["key"]) != key:
            raise KeyError("another picture")
        found = []
        for i, (start, end) in enumerate(data["shots"]):
            item = ShotFaces(Shot(int(start), int(end)))
            j = 0
            while f"box_{i}_{j}" in data:
                item.tracks.append(Track(data[f"box_{i}_{j}"]))
                item.mouth.append(data[f"mouth_{i}_{j}"])
                j += 1
            found.append(item)
    return found


# -- pass 2: which shots ---------------------------------------------------------------------


@dataclass
class ShotPlan:
    shot: Shot
    reason: str
    speaker: str = ""
    score: float | None = None
    box: np.ndarray | None = None  # the face's box per frame of the shot
    weights: np.ndarray | None = None  # how much each frame of the shot is re-drawn (0-1)
    audio: list[tuple[float, Path]] = field(default_factory=list)  # the speaker's dub clips
    failed: bool = False

    @property
    def frames_synced(self) -> int:
        return 0 if self.weights is None else int((self.weights > 0).sum())

    def to_dict(self, video: VideoInfo) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "start_s": round(video.time_s(self.shot.start), 3),
            "end_s": round(video.time_s(self.shot.end), 3),
            "frames": self.shot.end - self.shot.start,
            "status": self.reason,
        }
        if self.speaker:
            shown["speaker"] = self.speaker
        if self.score is not None:
            shown["score"] = round(self.score, 3)
        if self.reason == Reason.SYNCED:
            shown["frames_synced"] = self.frames_synced
        return shown


def _decide(
    item: ShotFaces, video: VideoInfo, lines: list[Any], options: LipSyncOptions
) -> ShotPlan:
    shot = item.shot
    rate = float(video.frame_rate)
    length = shot.end - shot.start
    times = (np.arange(length) + shot.start) / rate
    speech: dict[str, np.ndarray] = {}
    for speaker, start, end, _ in lines:
        if end <= times[0] or start >= times[-1] + 1 / rate:
            continue
        active = speech.setdefault(speaker, np.zeros(length, dtype=bool))
        active |= (times >= start) & (times < end)
    talking = {k: v for k, v in speech.items() if v.sum() >= 0.3 * rate}
    if not item.tracks:
        return ShotPlan(shot, Reason.NO_FACE)
    if len(item.tracks) > 1:
        return ShotPlan(shot, Reason.SEVERAL)
    track = item.tracks[0]
    seen = track.seen()
    heights = track.boxes[seen, 3]
    if heights.size == 0:
        return ShotPlan(shot, Reason.NO_FACE)
    if float(np.median(heights)) < options.min_face_px:
        return ShotPlan(shot, Reason.SMALL)
    if not talking:
        return ShotPlan(shot, Reason.NO_SPEECH)
    evidence = {k: speaking(item.mouth[0], v, rate) for k, v in talking.items()}
    speaker, best = max(evidence.items(), key=lambda kv: kv[1].score)
    if not best.speaks:
        return ShotPlan(shot, Reason.OFF_SCREEN, speaker, best.score)
    score = best.score
    # The frames re-drawn: the speaker's lines, source or dub, whichever reaches further.
    span = np.zeros(length, dtype=bool)
    clips = []
    for who, start, end, fit in lines:
        if who != speaker:
            continue
        a, b = start, end
        if fit is not None and fit.path:
            a, b = min(a, fit.start_s), max(b, fit.end_s)
            clips.append((fit.start_s, Path(fit.path)))
        span |= (times >= a - PAD_S) & (times < b + PAD_S)
    span &= seen
    weights = _ramped(span)
    if not (weights > 0).any():
        return ShotPlan(shot, Reason.NO_SPEECH, speaker, score)
    return ShotPlan(shot, Reason.SYNCED, speaker, score, track.boxes, weights, clips)


def _ramped(span: np.ndarray) -> np.ndarray:
    """1 inside the span, fading to 0 over :data:`RAMP_FRAMES` frames at each of its
    edges (inside it)."""
    distance = np.zeros(len(span))
    run = 0
    for i, on in enumerate(span):
        run = run + 1 if on else 0
        distance[i] = run
    back = np.zeros(len(span))
    run = 0
    for i in range(len(span) - 1, -1, -1):
        run = run + 1 if span[i] else 0
        back[i] = run
    edge = np.minimum(distance, back)
    return np.where(span, np.minimum(1.0, edge / (RAMP_FRAMES + 1)), 0.0)


# -- pass 3: render --------------------------------------------------------------------------


def _read_done(path: Path, inputs: str) -> set[int]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    return set(data.get("shots", [])) if data.get("inputs") == inputs else set()


def _write_done(path: Path, inputs: str, done: set[int]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"inputs": inputs, "shots": sorted(done)}), encoding="utf-8")


def _render(
    project: Project, source: Path, video: VideoInfo, shots: list[ShotPlan],
    engine: LipSyncEngine, options: LipSyncOptions, folder: Path, done: set[int],
    record: tuple[Path, str], reporter: StageReporter,
) -> None:  # fmt: skip
    """Encode every shot not done yet, in order, from one decoder; ``record``: the file
    that lists the finished shots, and the inputs they were made from."""
    done_file, key = record
    with FrameReader(source, video) as reader:
        frames = _Cursor(iter(reader))
        for index, plan in enumerate(shots):
            path = folder / f"{index:04d}.mkv"
            count = plan.shot.end - plan.shot.start
            if index in done and path.exists():
                for _ in range(count):
                    next(frames, None)
                continue
            remove_stale_temporaries(path)
            with atomic_path(path) as tmp:
                if plan.reason == Reason.SYNCED:
                    try:
                        _render_shot(project, video, plan, engine, options, frames, tmp)
                    except (MissingModelError, MissingDependencyError):
                        raise
                    except Exception as exc:  # one shot's failure is not the dub's
                        logger.warning(
                            "lip-sync failed on the shot at %.1f-%.1f s (%s): its original "
                            "frames are kept", video.time_s(plan.shot.start),
                            video.time_s(plan.shot.end), exc if isinstance(exc, OctaviaError)
                            else f"{type(exc).__name__}: {exc}",
                        )  # fmt: skip
                        plan.failed = True
                        _copy_shot(source, video, plan.shot, options, tmp)
                        _skip_rest(frames, plan.shot)
                else:
                    with _writer(tmp, video, options) as writer:
                        for _ in range(count):
                            frame = next(frames, None)
                            if frame is None:
                                break
                            writer.write(frame)
            if not plan.failed:
                done.add(index)
                _write_done(done_file, key, done)
            reporter.advance(0.4 + 0.6 * plan.shot.end / max(video.frames, 1),
                             message=f"shot {index + 1} of {len(shots)}")  # fmt: skip


class _Cursor:
    """The shared decoder's frames, and where it stands."""

    def __init__(self, frames: Any) -> None:
        self._frames = frames
        self.position = 0  # the index of the next frame

    def __next__(self) -> Frame:
        frame: Frame = next(self._frames)
        self.position = frame.index + 1
        return frame

    def __iter__(self) -> _Cursor:
        return self


def _skip_rest(frames: _Cursor, shot: Shot) -> None:
    """After a failed shot, move the shared decoder to the end of the shot."""
    while frames.position < shot.end:
        if next(frames, None) is None:
            break


def _writer(path: Path, video: VideoInfo, options: LipSyncOptions) -> FrameWriter:
    return FrameWriter(path, video, options.crf, options.preset, upright=not marks_rotation())


def _copy_shot(source: Path, video: VideoInfo, shot: Shot, options: LipSyncOptions,
               destination: Path) -> None:  # fmt: skip
    """Encode a shot's original frames (a decoder of its own, from the start: this is the
    fallback after a failed render, whose frames the shared decoder has passed)."""
    with (
        FrameReader(source, video) as reader,
        _writer(destination, video, options) as writer,
    ):
        for frame in reader:
            if frame.index >= shot.end:
                break
            if frame.index >= shot.start:
                writer.write(frame)


def _render_shot(
    project: Project, video: VideoInfo, plan: ShotPlan, engine: LipSyncEngine,
    options: LipSyncOptions, frames: Any, destination: Path,
) -> None:  # fmt: skip
    """Encode one shot, its speaking frames re-drawn. The audio is read and heard a piece
    (:data:`CHUNK_S`) at a time, so a long shot costs what a short one does in memory."""
    assert plan.box is not None and plan.weights is not None
    boxes = plan.box
    rate = float(video.frame_rate)
    shot = plan.shot
    heard: dict[str, Any] = {"chunk": -1, "features": None, "begin_s": 0.0}
    pending: list[tuple[Frame, float]] = []
    size = engine.crop_size
    batch = max(1, getattr(engine, "batch_size", 8))

    def hear(chunk: int) -> None:
        start_s = video.time_s(shot.start) + chunk * CHUNK_S
        begin_s = max(0.0, start_s - AUDIO_MARGIN_S)
        audio = _speaker_audio(project, plan.audio, begin_s, start_s + CHUNK_S + AUDIO_MARGIN_S)
        heard.update(chunk=chunk, features=engine.audio_features(audio), begin_s=begin_s)

    with _writer(destination, video, options) as writer:

        def flush() -> None:
            redraw = [(f, w) for f, w in pending if w > 0]
            if redraw:
                regions = [crop_region(boxes[f.index - shot.start], video) for f, _ in redraw]
                crops = np.stack([
                    crop_face(f, video, region, size) for (f, _), region in zip(redraw, regions,
                                                                              strict=True)
                ])  # fmt: skip
                times = np.array([f.index / rate - heard["begin_s"] for f, _ in redraw])
                drawn = engine.render(crops, heard["features"], times)
                for (frame, weight), region, face in zip(redraw, regions, drawn, strict=True):
                    paste_face(frame, video, region, face, weight)
            for frame, _ in pending:
                writer.write(frame)
            pending.clear()

        for offset in range(shot.end - shot.start):
            frame = next(frames, None)
            if frame is None:
                break
            chunk = int(offset / rate // CHUNK_S)
            if chunk != heard["chunk"] and plan.weights[offset:].any():
                flush()  # (the frames so far with the audio they were read with)
                hear(chunk)
            pending.append((frame, float(plan.weights[offset])))
            if len(pending) >= batch:
                flush()
        flush()


def _speaker_audio(project: Project, clips: list[tuple[float, Path]], begin_s: float,
                   end_s: float) -> np.ndarray:  # fmt: skip
    """The speaker's dub alone (their fitted clips at their places), 16 kHz mono."""
    out = np.zeros(round((end_s - begin_s) * SAMPLE_RATE_HZ), dtype=np.float32)
    for start_s, relative in clips:
        audio = read_audio(project.path(str(relative)), SAMPLE_RATE_HZ)[0].mean(axis=0)
        at = round((start_s - begin_s) * SAMPLE_RATE_HZ)
        a, b = max(at, 0), min(at + len(audio), len(out))
        if b > a:
            out[a:b] += audio[a - at : b - at]
    return out


# The crop around a face (MuseTalk's landmark box is from under the eyes to the chin; the
# cascade's box ends at the lower lip): the cascade's box, widened a little and extended
# down to take in the chin. Fractions of the cascade box's side.
CROP_TOP, CROP_BOTTOM, CROP_SIDE = 0.05, 1.2, 0.05


def crop_region(box: np.ndarray, video: VideoInfo) -> tuple[int, int, int, int]:
    """The square region (x0, y0, x1, y1 in coded pixels, chroma-aligned) re-drawn for the
    face ``box`` (x, y, w, h in upright pixels)."""
    x, y, w, h = (float(v) for v in box)
    side = max(w * (1 + 2 * CROP_SIDE), h * (CROP_BOTTOM - CROP_TOP))
    cx, cy = x + w / 2, y + h * (CROP_TOP + CROP_BOTTOM) / 2
    x0, y0 = cx - side / 2, cy - side / 2
    width, height = _upright_size(video)
    side = min(side, width, height)
    x0 = min(max(x0, 0.0), width - side)
    y0 = min(max(y0, 0.0), height - side)
    upright_box = (round(x0), round(y0), round(x0 + side), round(y0 + side))
    return _aligned(_to_coded(upright_box, video), video)


def _upright_size(video: VideoInfo) -> tuple[int, int]:
    return (video.height, video.width) if video.rotation in (90, 270) else (
        video.width, video.height)  # fmt: skip


def _to_coded(box: tuple[int, int, int, int], video: VideoInfo) -> tuple[int, int, int, int]:
    """A box in upright pixels as a box in coded pixels (np.rot90's turn undone)."""
    x0, y0, x1, y1 = box
    w, h = video.width, video.height  # coded
    k = (video.rotation // 90) % 4
    if k == 0:
        return box
    if k == 1:  # upright = rot90 ccw: upright (x, y) <- coded (w - 1 - y, x)
        return (w - y1, x0, w - y0, x1)
    if k == 2:
        return (w - x1, h - y1, w - x0, h - y0)
    return (y0, h - x1, y1, h - x0)  # k == 3


def _aligned(box: tuple[int, int, int, int], video: VideoInfo) -> tuple[int, int, int, int]:
    sx, sy, _ = video.layout
    x0, y0, x1, y1 = box
    x0, y0 = x0 - x0 % sx, y0 - y0 % sy
    x1, y1 = min(video.width, x1 + (-x1) % sx), min(video.height, y1 + (-y1) % sy)
    return x0, y0, x1, y1


def crop_face(
    frame: Frame, video: VideoInfo, region: tuple[int, int, int, int], size: int
) -> np.ndarray:
    """The ``region`` of ``frame`` (coded pixels) as the engine takes it: upright, RGB,
    ``size`` x ``size``, uint8."""
    import cv2

    rgb = upright(region_to_rgb(frame, video, region), video.rotation)
    resized = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_LANCZOS4)
    return np.clip(np.rint(resized * 255), 0, 255).astype(np.uint8)


@functools.cache
def face_mask(size: int) -> np.ndarray:
    """Where the re-drawn crop replaces the frame (0-1, upright crop pixels): an ellipse
    over the mouth and jaw in the crop's lower half, feathered. MuseTalk 1.5 blends with a
    face-parsing mask of the jaw region (BiSeNet, a download from outside the hub); this
    ellipse stands in for it: it can take in a little background beside a narrow chin.
    (Cached: callers must not change it.)"""
    import cv2

    mask = np.zeros((size, size), dtype=np.float32)
    centre = (round(size * 0.5), round(size * 0.7))
    axes = (round(size * 0.3), round(size * 0.2))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1.0, thickness=-1)
    mask[: size // 2] = 0  # never above the middle of the crop (MuseTalk's upper boundary)
    blur = int(0.05 * size) // 2 * 2 + 1
    feathered: np.ndarray = cv2.GaussianBlur(mask, (blur, blur), 0)
    feathered[feathered < 1e-3] = 0.0
    return feathered


def paste_face(frame: Frame, video: VideoInfo, region: tuple[int, int, int, int], face: np.ndarray,
           weight: float) -> None:  # fmt: skip
    """Blend the re-drawn ``face`` (upright, as :func:`crop_face` gave it) back into
    ``region`` of ``frame`` under :func:`face_mask`, ``weight`` times."""
    import cv2

    x0, y0, x1, y1 = region
    k = (video.rotation // 90) % 4
    height, width = (x1 - x0, y1 - y0) if k in (1, 3) else (y1 - y0, x1 - x0)
    drawn = cv2.resize(face.astype(np.float32) / 255.0, (width, height),
                       interpolation=cv2.INTER_LANCZOS4)  # fmt: skip
    alpha = cv2.resize(face_mask(face.shape[0]), (width, height), interpolation=cv2.INTER_LINEAR)
    alpha = np.clip(alpha * weight, 0.0, 1.0)
    alpha[alpha < 1e-3] = 0.0
    if k:
        drawn = np.rot90(drawn, k=-k)
        alpha = np.rot90(alpha, k=-k)
    blend_rgb(frame, video, region, np.clip(drawn, 0.0, 1.0), np.ascontiguousarray(alpha))
