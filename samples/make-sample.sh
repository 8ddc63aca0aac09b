#!/usr/bin/env bash
# Rebuilds samples/talk.mp4 from samples/talk.txt: espeak-ng speech over a still
# picture, H.264 + AAC with the index at the front (as a phone or OBS uploads).
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
espeak-ng -s 150 -w "$tmp/talk.wav" -f talk.txt
# An explicit length: -shortest overshoots with x264's look-ahead on an endless picture.
seconds=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$tmp/talk.wav")
ffmpeg -v error -y -f lavfi -i color=c=navy:s=320x180:r=2 -i "$tmp/talk.wav" -t "$seconds" \
  -c:v libx264 -preset veryslow -crf 40 -tune stillimage \
  -c:a aac -b:a 32k -ac 1 -movflags +faststart talk.mp4
ls -l talk.mp4
