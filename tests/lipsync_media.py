"""Media and models for the lip-sync tests and bench: a video of a real face that speaks
real speech, and MuseTalk's three networks, tiny and randomly initialised, in each hub
repository's own file layout.

The face is scikit-image's ``astronaut`` (a public-domain NASA photograph). The camera pans
and zooms over it, so the face moves and grows in the frame; while the speech is heard, a
mouth opening is drawn between the lips, as wide as the speech is loud, so the face is
seen to speak (or, with ``speaking=False``, it stays still while someone off screen
speaks). A shot of ffmpeg's test pattern is cut in after it. The picture is encoded
losslessly (FFV1), so decoded frames can be compared exactly.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPEECH = Path(__file__).resolve().parents[2] / "shared/data/librispeech/1688-142285-0005.flac"
MOUTH = (224.0, 147.0)  # the mouth's centre in the astronaut photograph (pixels)
FACE_PX = 95.0  # the face's height in the photograph (the cascade's box)
SIZE = (320, 240)


@dataclass(frozen=True)
class TalkingFace:
    path: Path
    fps: int
    face_frames: int  # the face's shot: frames 0 .. face_frames - 1
    pattern_frames: int  # then the test pattern's
    speech_start_s: float
    windows: np.ndarray  # per face frame: the photograph's window (x, y, width) shown

    def mouth_at(self, frame: int) -> tuple[float, float, float]:
        """The mouth's centre in a face frame, and the face's height there (pixels)."""
        x, y, width = self.windows[frame]
        scale = SIZE[0] / width
        return (MOUTH[0] - x) * scale, (MOUTH[1] - y) * scale, FACE_PX * scale


def make_talking_face(
    folder: Path, *, fps: int = 30, speaking: bool = True, face_s: float = 5.0,
    pattern_s: float = 1.5, speech_start_s: float = 0.5,
) -> TalkingFace:  # fmt: skip
    import cv2
    import soundfile
    from skimage import data

    photo = data.astronaut()
    speech, rate = soundfile.read(SPEECH, dtype="float32")
    face_frames, pattern_frames = round(face_s * fps), round(pattern_s * fps)
    total_s = (face_frames + pattern_frames) / fps
    audio = np.zeros(round(total_s * rate), dtype=np.float32)
    at = round(speech_start_s * rate)
    audio[at : at + len(speech)] = speech[: len(audio) - at]
    # The loudness of the speech around each frame: how open the mouth is.
    hop = rate / fps
    loudness = np.array([
        np.sqrt(np.mean(audio[int(i * hop) : int((i + 1) * hop)] ** 2) + 1e-12)
        for i in range(face_frames)
    ])  # fmt: skip
    opening = np.clip(loudness / (np.percentile(loudness, 95) + 1e-9), 0, 1)
    opening[opening < 0.2] = 0  # a breath or a click does not open the mouth

    frames_dir = folder / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    windows = []
    for i in range(face_frames):
        progress = i / max(face_frames - 1, 1)
        width = 300.0 - 70.0 * progress  # zoom in
        x = 70.0 + 40.0 * progress  # pan right
        y = 40.0 + 10.0 * np.sin(progress * np.pi)
        windows.append((x, y, width))
        picture = photo.copy()
        if speaking and opening[i] > 0:
            axes = (16, max(1, round(9 * opening[i])))
            cv2.ellipse(picture, (round(MOUTH[0]), round(MOUTH[1]) + 2), axes, 0, 0, 360,
                        (60, 20, 25), thickness=-1)  # fmt: skip
        # The window, resampled to the frame (an affine warp: sub-pixel pan and zoom).
        scale = SIZE[0] / width
        matrix = np.array([[scale, 0, -x * scale], [0, scale, -y * scale]])
        frame = cv2.warpAffine(picture, matrix, SIZE, flags=cv2.INTER_LINEAR)
        cv2.imwrite(str(frames_dir / f"{i:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    wav = folder / "speech.wav"
    soundfile.write(wav, audio, rate)
    path = folder / "talk.mkv"
    pattern = f"testsrc2=size={SIZE[0]}x{SIZE[1]}:rate={fps}:duration={pattern_s}"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-framerate", str(fps), "-i", str(frames_dir / "%05d.png"),
         "-f", "lavfi", "-i", pattern, "-i", str(wav),
         "-filter_complex", "[0:v]format=yuv420p[a];[1:v]format=yuv420p[b];"
         "[a][b]concat=n=2:v=1:a=0[v]", "-map", "[v]", "-map", "2:a",
         "-c:v", "ffv1", "-c:a", "flac", str(path)],
        check=True,
    )  # fmt: skip
    return TalkingFace(path, fps, face_frames, pattern_frames, speech_start_s,
                       np.array(windows))  # fmt: skip


# -- MuseTalk's networks, tiny -----------------------------------------------------------------

WHISPER_WIDTH = 64  # the tiny Whisper's width (the real one's is 384), and the UNet's cross


def tiny_unet_config() -> dict:
    """``musetalkV15/musetalk.json``'s keys, with two small blocks instead of four (the
    cross-attention on the audio in the lower one only, at 16 x 16)."""
    return {
        "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.6.0.dev0",
        "act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [32, 64],
        "center_input_sample": False, "cross_attention_dim": WHISPER_WIDTH,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"], "downsample_padding": 1,
        "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 8, "layers_per_block": 1,
        "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
        "out_channels": 4, "sample_size": 32,
        "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
    }  # fmt: skip


# The real MuseTalk 1.5 UNet (musetalkV15/musetalk.json).
FULL_UNET_CONFIG = {
    "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.6.0.dev0",
    "act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False, "cross_attention_dim": 384,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                         "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 8,
    "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05,
    "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                       "CrossAttnUpBlock2D"],
}  # fmt: skip


def build_musetalk_folders(root: Path, *, full: bool = False) -> dict[str, Path]:
    """The three repositories' files (``musetalk``, ``sd-vae-ft-mse``, ``whisper-tiny``),
    randomly initialised: tiny, or at their real sizes with ``full``."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    torch.manual_seed(0)
    folders = {name: root / name for name in ("musetalk", "sd-vae-ft-mse", "whisper-tiny")}
    unet_config = FULL_UNET_CONFIG if full else tiny_unet_config()
    (folders["musetalk"] / "musetalkV15").mkdir(parents=True, exist_ok=True)
    (folders["musetalk"] / "musetalkV15/musetalk.json").write_text(json.dumps(unet_config))
    unet = UNet2DConditionModel.from_config(unet_config)
    torch.save(unet.state_dict(), folders["musetalk"] / "musetalkV15/unet.pth")
    if full:  # sd-vae-ft-mse's config.json
        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512), latent_channels=4, layers_per_block=2,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, sample_size=256,
        )  # fmt: skip
    else:  # the same shape of latents (256 pixels -> 32 x 32 x 4), far fewer channels
        vae = AutoencoderKL(
            block_out_channels=(8, 8, 8, 8), latent_channels=4, layers_per_block=1,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=4, sample_size=256,
        )  # fmt: skip
    vae.save_pretrained(folders["sd-vae-ft-mse"], safe_serialization=True)
    if full:  # openai/whisper-tiny's config
        config = WhisperConfig(
            d_model=384, encoder_layers=4, decoder_layers=4, encoder_attention_heads=6,
            decoder_attention_heads=6, encoder_ffn_dim=1536, decoder_ffn_dim=1536,
            num_mel_bins=80,
        )  # fmt: skip
    else:
        config = WhisperConfig(
            d_model=WHISPER_WIDTH, encoder_layers=4, decoder_layers=1, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128,
            num_mel_bins=80, vocab_size=128, max_target_positions=64, pad_token_id=0,
            bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
        )  # fmt: skip
    WhisperModel(config).save_pretrained(folders["whisper-tiny"], safe_serialization=True)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(folders["whisper-tiny"])
    return folders
