#!/usr/bin/env bash
# Makes examples/talk.mp4: four English sentences spoken by espeak-ng at known times, over a
# quiet music-like bed, on an ffmpeg test pattern. 10 s, 640x360, H.264 + AAC.
# Needs ffmpeg and espeak-ng (Debian/Ubuntu: sudo apt-get install ffmpeg espeak-ng).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/talk.mp4}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export XDG_RUNTIME_DIR="$work" XDG_CONFIG_HOME="$work"  # espeak-ng writes PulseAudio files there

lines=(
  "0.5|Welcome to the city library."
  "3.0|Today we talk about old books."
  "5.5|The new room opens next week."
  "8.0|Thank you for watching."
)
inputs=() filters="" labels=""
for i in "${!lines[@]}"; do
  start="${lines[$i]%%|*}" text="${lines[$i]#*|}"
  espeak-ng -v en-us -s 160 -w "$work/line$i.wav" "$text"
  inputs+=(-i "$work/line$i.wav")
  delay_ms=$(awk "BEGIN{print int($start*1000)}")
  filters+="[$((i + 1)):a]aresample=48000,adelay=${delay_ms}:all=1[l$i];"
  labels+="[l$i]"
done
# A soft chord as the "music" under the speech, so the mix has something to keep.
bed="sine=f=220:d=10,volume=0.03[b0];sine=f=277:d=10,volume=0.02[b1];sine=f=330:d=10,volume=0.02[b2];[b0][b1][b2]amix=3:normalize=0[bed];"
ffmpeg -v error -y \
  -f lavfi -i "testsrc2=size=640x360:rate=25:duration=10" \
  "${inputs[@]}" \
  -filter_complex "${bed}${filters}${labels}[bed]amix=inputs=$(( ${#lines[@]} + 1 )):normalize=0:duration=longest,atrim=0:10,aformat=channel_layouts=stereo[a]" \
  -map 0:v -map "[a]" -c:v libx264 -preset veryfast -crf 28 -pix_fmt yuv420p \
  -c:a aac -b:a 128k -ar 48000 -metadata:s:a:0 language=eng -shortest "$out"
echo "$out"
