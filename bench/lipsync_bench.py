"""Lip-sync's cost: frames a second MuseTalk 1.5 re-draws with its full-size networks (random
weights, the real shapes: the UNet of ``musetalkV15/musetalk.json``, sd-vae-ft-mse's VAE,
Whisper-tiny's encoder), on the CPU and, where there is one, on a GPU in fp16; and frames a
second of the face analysis (shots, faces, mouths) on a 720p picture.

    python bench/lipsync_bench.py [--frames 16] [--batch 8] [--device cpu|cuda|all]

The random weights draw noise, but the arithmetic per frame is the trained model's. The
figures set ``LIPSYNC_CPU_FPS`` and ``LIPSYNC_GPU_FPS`` in ``pipeline/dub.py`` (the
estimate a CPU run is warned with).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import ClassVar

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def networks() -> tuple:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    from lipsync_media import FULL_UNET_CONFIG

    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(FULL_UNET_CONFIG)
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512), latent_channels=4, layers_per_block=2,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=32, sample_size=256,
    )  # fmt: skip
    config = WhisperConfig(d_model=384, encoder_layers=4, decoder_layers=4,
                           encoder_attention_heads=6, decoder_attention_heads=6,
                           encoder_ffn_dim=1536, decoder_ffn_dim=1536, num_mel_bins=80)  # fmt: skip
    encoder = WhisperModel(config).get_encoder()
    return unet, vae, encoder, WhisperFeatureExtractor(feature_size=80)


def time_network(device: str, frames: int, batch: int) -> dict[str, float]:
    from octavia_cli.engines.lipsync.musetalk import MuseTalk

    engine = MuseTalk(device=device, batch_size=batch)
    unet, vae, encoder, features = networks()
    params = sum(p.numel() for p in unet.parameters()) / 1e6
    engine.use(unet, vae, encoder, features)
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(16_000 * 10) * 0.1).astype(np.float32)
    began = time.perf_counter()
    heard = engine.audio_features(audio)
    audio_s = time.perf_counter() - began
    crops = rng.integers(0, 255, (frames, 256, 256, 3), dtype=np.uint8)
    times = np.arange(frames) / 25
    engine.render(crops[:batch], heard, times[:batch])  # warm-up (kernels, allocator)
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    began = time.perf_counter()
    engine.render(crops, heard, times)
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    seconds = time.perf_counter() - began
    return {"unet_mparams": params, "fps": frames / seconds, "audio_rtf": audio_s / 10.0}


def time_faces(seconds: float = 10.0) -> dict[str, float]:
    """The analysis passes on a 720p, 25 fps picture: a face (the astronaut) that pans."""
    from lipsync_media import make_talking_face
    from octavia_cli.engines.lipsync.faces import detect_shots
    from octavia_cli.media.video import probe_video

    with tempfile.TemporaryDirectory() as folder:
        face = make_talking_face(Path(folder), fps=25, face_s=seconds, pattern_s=1.0)
        big = Path(folder) / "720p.mkv"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(face.path), "-vf", "scale=1280:720",
             "-c:v", "libx264", "-crf", "18", "-c:a", "copy", str(big)], check=True,
        )  # fmt: skip
        from octavia_cli.stages import lipsync as stage

        video = probe_video(big)
        began = time.perf_counter()
        shots = detect_shots(big, float(video.frame_rate), video.frames)
        detect = time.perf_counter() - began

        class Quiet:
            def advance(self, *args: object, **kwargs: object) -> None:
                pass

        class Project:  # the cache the stage keeps its faces in
            stages: ClassVar = {"extract": type("R", (), {"inputs_hash": "bench"})()}

            def path(self, relative: str) -> Path:
                return Path(folder) / relative

        began = time.perf_counter()
        found = stage._faces(Project(), big, video, Quiet())  # type: ignore[arg-type]
        analysis = time.perf_counter() - began
        tracks = sum(len(f.tracks) for f in found)
        return {"frames": video.frames, "shots": len(shots), "tracks": tracks,
                "shots_fps": video.frames / detect,
                "analysis_fps": video.frames / analysis}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="all", choices=("cpu", "cuda", "all"))
    args = parser.parse_args()
    import torch

    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        print("no CUDA GPU here: the GPU figures are not measured")
        devices.remove("cuda")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    for device in devices:
        frames = args.frames if device == "cpu" else max(args.frames, 256)
        result = time_network(device, frames, args.batch if device == "cpu" else 32)
        name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
        print(f"{name} ({'fp16' if device == 'cuda' else 'fp32'}): UNet "
              f"{result['unet_mparams']:.0f} M parameters, {result['fps']:.2f} frames/s "
              f"re-drawn; audio features {result['audio_rtf']:.3f} x real time")  # fmt: skip
    faces = time_faces()
    print(f"face analysis, 720p 25 fps, {faces['frames']} frames: shots at "
          f"{faces['shots_fps']:.0f} frames/s, faces and mouths at {faces['analysis_fps']:.0f} "
          f"frames/s ({faces['shots']} shots, {faces['tracks']} face track(s))")  # fmt: skip


if __name__ == "__main__":
    main()
