"""Shots, faces and who is speaking on screen: what lip-sync needs to know of the picture.

- **Shots**: ffmpeg's scene-change score (the ``scene`` value of its ``select`` filter: the
  mean absolute difference of consecutive frames, corrected for the one before) above a
  threshold starts a new shot. No model, and the decoder is ffmpeg's own.
- **Faces**: OpenCV's frontal-face Haar cascade (``haarcascade_frontalface_default.xml``,
  shipped in the ``opencv-python-headless`` wheel: no download, no GPU), run on five frames
  a second of the grey picture, upright, at a working height of at most 240 pixels (at 360
  pixels and 12 a second it cost more than decoding a 720p picture). It was chosen because
  its weights ship in a package; its costs are that it sees frontal faces only (a profile is
  "no face") and that its box is coarser than MuseTalk's landmark box (DWPose and S3FD,
  which need mmpose and downloads from outside the hub).
- **Tracks**: detections linked across a shot by overlap; short tracks (false alarms) are
  dropped; the box is interpolated between detections and smoothed over 0.4 s, so the crop
  does not jitter.
- **Who speaks**: a face's mouth movement (the frame-to-frame change of its mouth region,
  less that of its eyes region, which moves with the head and the camera) while each
  speaker of the shot speaks, against while they are silent. The face is the speaker's
  whose speech moves it clearly (:class:`Speaking`); otherwise the speaker is off screen.
  A correlation was tried first: a shot in which the speaker talks throughout has too
  little silence for one to mean anything.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np

from octavia_cli.errors import MissingDependencyError, StageError
from octavia_cli.media.ffmpeg import ff, require_program

SCENE_THRESHOLD = 0.3  # ffmpeg's scene score that starts a new shot
WORK_HEIGHT = 240  # faces are looked for at this height at most
DETECTIONS_PER_S = 5.0  # frames looked at a second (boxes between are interpolated)
MIN_FACE_SHARE = 0.08  # the cascade's smallest face: this share of the working height
LINK_IOU = 0.3  # a detection continues a track when its box overlaps the track's this much
MIN_TRACK_SHARE = 0.3  # a track shorter than this share of its shot is a false alarm
MAX_GAP_S = 1.0  # a track's boxes are interpolated over gaps up to this long
SMOOTH_S = 0.4
# A face is a speaker's when its mouth moves at least this much on average while they speak
# (the mean absolute frame-to-frame change of its normalised mouth region, less its eyes
# region's); a still face measures 0.01-0.03 under the camera's pan and zoom, a speaking
# one 0.10-0.20 (tests/lipsync_media.py's face) ...
MIN_MOVEMENT = 0.06
MIN_RATIO = 2.0  # ... and at least twice as much as while they are silent,
MIN_QUIET_S = 0.5  # when the shot holds this much of their silence
EDGE_S = 0.3  # silence this near their speech is not counted as silence


@dataclass
class Shot:
    start: int  # first frame
    end: int  # one past the last frame


@dataclass
class Track:
    """One face through a shot: its box (x, y, w, h in frame pixels, as coded) per frame,
    NaN where it is not seen."""

    boxes: np.ndarray  # frames x 4
    detections: int = 0

    def seen(self) -> np.ndarray:
        return ~np.isnan(self.boxes[:, 0])


@dataclass
class ShotFaces:
    shot: Shot
    tracks: list[Track] = field(default_factory=list)
    mouth: list[np.ndarray] = field(default_factory=list)  # per track: movement per frame


def detect_shots(video: Path, frame_rate: float, frames: int) -> list[Shot]:
    """The shots of ``video``, by ffmpeg's scene score."""
    ffmpeg = require_program("ffmpeg")
    args = [ffmpeg, "-nostdin", "-v", "error", "-i", ff(video), "-map", "0:v:0",
            "-vf", f"scale=-2:'min({WORK_HEIGHT},ih)',"
            f"select='gt(scene,{SCENE_THRESHOLD})',metadata=print:file=-",
            "-fps_mode", "passthrough", "-f", "null", "-"]  # fmt: skip
    done = subprocess.run(args, capture_output=True, check=False)
    if done.returncode != 0:
        raise StageError("Could not find the shots of the video.", done.stderr.decode()[-300:])
    times = [float(t) for t in re.findall(rb"pts_time:([\d.]+)", done.stdout)]
    cuts = sorted({round(t * frame_rate) for t in times} - {0})
    edges = [0, *[c for c in cuts if 0 < c < frames], frames]
    return [Shot(a, b) for a, b in pairwise(edges) if b > a]


class FaceDetector:
    """OpenCV's frontal-face cascade."""

    def __init__(self) -> None:
        try:
            import cv2
        except ImportError:
            raise MissingDependencyError(
                "Lip-sync finds faces with OpenCV, not installed here.",
                "pip install 'octavia-cli[quality]'",
            ) from None
        self._cv2 = cv2
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise MissingDependencyError(
                f"OpenCV's face cascade is missing ({path}).",
                "pip install 'opencv-python-headless>=4.8,<5' (OpenCV 5 no longer ships it).",
            )

    def __call__(self, gray: np.ndarray) -> np.ndarray:
        """Faces in an upright grey image (at the working height): ``n x 4`` boxes
        (x, y, w, h) in its pixels."""
        cv2 = self._cv2
        side = max(20, round(MIN_FACE_SHARE * gray.shape[0]))
        found = self._cascade.detectMultiScale(
            cv2.equalizeHist(gray), scaleFactor=1.15, minNeighbors=5, minSize=(side, side)
        )
        if len(found) == 0:
            return np.zeros((0, 4))
        return np.asarray(found, dtype=np.float64)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    h = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def link_tracks(detections: dict[int, np.ndarray], length: int, frame_rate: float) -> list[Track]:
    """Tracks from detections (frame in the shot -> boxes): each detection continues the
    track whose last box overlaps it most; the rest start tracks. Short tracks are dropped;
    the kept ones are interpolated over short gaps and smoothed."""
    tracks: list[Track] = []
    last: list[tuple[int, np.ndarray]] = []
    for frame in sorted(detections):
        taken: set[int] = set()
        for box in detections[frame]:
            scores = [
                (iou(box, previous), i)
                for i, (seen, previous) in enumerate(last)
                if i not in taken and frame - seen <= MAX_GAP_S * frame_rate + 1
            ]
            best = max(scores, default=(0.0, -1))
            if best[0] >= LINK_IOU:
                index = best[1]
            else:
                tracks.append(Track(np.full((length, 4), np.nan)))
                last.append((frame, box))
                index = len(tracks) - 1
            taken.add(index)
            tracks[index].boxes[frame] = box
            tracks[index].detections += 1
            last[index] = (frame, box)
    looked = max(1, len(detections))  # frames looked at
    kept = []
    for track in tracks:
        seen = np.flatnonzero(track.seen())
        spanned = seen[-1] - seen[0] + 1 if seen.size else 0
        if spanned < MIN_TRACK_SHARE * length:
            continue
        # Found in under 30% of the frames looked at over its span: a flicker, not a face.
        if track.detections < 0.3 * looked * spanned / length:
            continue
        kept.append(_smooth(_fill(track, frame_rate), frame_rate))
    return kept


def _fill(track: Track, frame_rate: float) -> Track:
    """Boxes interpolated between detections less than :data:`MAX_GAP_S` apart."""
    seen = np.flatnonzero(track.seen())
    boxes = track.boxes.copy()
    for a, b in pairwise(seen):
        if 1 < b - a <= MAX_GAP_S * frame_rate + 1:
            weights = (np.arange(a + 1, b) - a)[:, None] / (b - a)
            boxes[a + 1 : b] = boxes[a] * (1 - weights) + boxes[b] * weights
    # Before the first and after the last detection, within the gap allowance.
    reach = round(MAX_GAP_S * frame_rate)
    boxes[max(0, seen[0] - reach) : seen[0]] = boxes[seen[0]]
    boxes[seen[-1] + 1 : seen[-1] + 1 + reach] = boxes[seen[-1]]
    return Track(boxes, track.detections)


def _smooth(track: Track, frame_rate: float) -> Track:
    """A moving average of the box's centre and size over :data:`SMOOTH_S`, within each
    stretch where the face is seen."""
    width = max(1, round(SMOOTH_S * frame_rate)) | 1
    boxes = track.boxes.copy()
    seen = track.seen()
    edges = np.flatnonzero(np.diff(np.r_[0, seen.astype(int), 0]))
    for a, b in zip(edges[::2], edges[1::2], strict=False):
        part = boxes[a:b]
        centre = part[:, :2] + part[:, 2:] / 2
        size = part[:, 2:]
        values = np.concatenate([centre, size], axis=1)
        padded = np.pad(values, ((width // 2, width // 2), (0, 0)), mode="edge")
        kernel = np.ones(width) / width
        smooth = np.stack(
            [np.convolve(padded[:, i], kernel, mode="valid") for i in range(4)], axis=1
        )
        boxes[a:b, :2] = smooth[:, :2] - smooth[:, 2:] / 2
        boxes[a:b, 2:] = smooth[:, 2:]
    return Track(boxes, track.detections)


MOUTH_SIZE = (32, 16)  # the mouth region, resampled (width, height), for its movement


def mouth_and_eyes(gray: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mouth and the eyes regions of the face ``box`` in an upright grey image,
    resampled to one size and normalised (so lighting does not count as movement)."""
    import cv2

    x, y, w, h = box

    def region(top: float, bottom: float) -> np.ndarray:
        x0, x1 = round(x + 0.22 * w), round(x + 0.78 * w)
        y0, y1 = round(y + top * h), round(y + bottom * h)
        y0, y1 = max(0, y0), min(gray.shape[0], max(y1, y0 + 2))
        x0, x1 = max(0, x0), min(gray.shape[1], max(x1, x0 + 2))
        patch = cv2.resize(gray[y0:y1, x0:x1], MOUTH_SIZE, interpolation=cv2.INTER_AREA)
        patch = patch.astype(np.float32)
        return (patch - patch.mean()) / (patch.std() + 8.0)

    return region(0.68, 1.02), region(0.22, 0.5)


@dataclass(frozen=True)
class Speaking:
    """How a face's mouth moves while one speaker speaks, and while they do not."""

    during: float  # mean movement over the frames of their speech
    between: float | None  # over the others (None: under MIN_QUIET_S of them)

    @property
    def speaks(self) -> bool:
        """The face is this speaker's: its mouth moves while they speak, and clearly more
        than while they are silent (when the shot has enough of their silence to tell)."""
        if self.during < MIN_MOVEMENT:
            return False
        return self.between is None or self.during >= MIN_RATIO * self.between

    @property
    def score(self) -> float:
        return self.during - (self.between or 0.0)


def speaking(movement: np.ndarray, speech: np.ndarray, frame_rate: float) -> Speaking:
    """A face's mouth movement (per frame, NaN where unseen) against one speaker's speech
    (True where they speak)."""
    seen = ~np.isnan(movement)
    # Speech edges are known to a tenth of a second or so, and a mouth opens before the
    # sound: the frames near the speech count as neither.
    margin = max(1, round(EDGE_S * frame_rate))
    near = np.convolve(speech.astype(float), np.ones(2 * margin + 1), mode="same") > 0
    inside, outside = seen & speech, seen & ~near
    during = float(movement[inside].mean()) if inside.any() else 0.0
    between = None
    if outside.sum() >= MIN_QUIET_S * frame_rate:
        between = float(movement[outside].mean())
    return Speaking(during, between)


def smooth_movement(raw: np.ndarray, frame_rate: float) -> np.ndarray:
    """Mouth movement averaged over about a syllable (0.2 s), NaN kept where unseen."""
    width = max(1, round(0.2 * frame_rate))
    valid = ~np.isnan(raw)
    values = np.where(valid, raw, 0.0)
    kernel = np.ones(width)
    total = np.convolve(values, kernel, mode="same")
    count = np.convolve(valid.astype(float), kernel, mode="same")
    out = np.full_like(raw, np.nan)
    out[valid] = total[valid] / np.maximum(count[valid], 1)
    return out
