#!/bin/sh
# Regenerates the camsim fixtures with Debian's ffmpeg (5.1/6.x with libx264, libx265).
# Camera-like settings: constant 25 fps, a keyframe every 2 s (50 frames), parameter sets
# before every keyframe (repeat-headers), no B-frames, no scene-cut keyframes.
# Video is MPEG-TS (timestamps and access-unit boundaries come with the container);
# audio is raw ADTS AAC. Each clip is 4 s long: two GOPs, looped by camsim, except
# h264_main_high.ts (Options.Bitrate "high", ~2 Mbit/s for benchmarks): one 2 s GOP, so
# that the file stays near 500 KB; looping it keeps the keyframe interval at exactly 2 s.
# Its rate is set a little under 2M because x264 overshoots a short clip (measured:
# 1.99 Mbit/s of H.264 over the 2 s).
set -eu
cd "$(dirname "$0")"
D=4
X264='-c:v libx264 -preset veryfast -tune zerolatency -x264-params repeat-headers=1:sliced-threads=0 -profile:v baseline -level:v 3.1 -pix_fmt yuv420p -g 50 -keyint_min 50 -sc_threshold 0 -bf 0'
X265P='keyint=50:min-keyint=50:scenecut=0:bframes=0:repeat-headers=1:open-gop=0:log-level=error'
X265="-c:v libx265 -preset veryfast -tune zerolatency -pix_fmt yuv420p"

ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=25 -t $D \
  $X264 -b:v 1M -maxrate 1M -bufsize 1M -an -f mpegts h264_main.ts
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=25 -t 2 \
  $X264 -b:v 1850k -maxrate 1850k -bufsize 1850k -an -f mpegts h264_main_high.ts
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=640x360:rate=25 -t $D \
  $X264 -b:v 300k -maxrate 300k -bufsize 300k -an -f mpegts h264_sub.ts
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=25 -t $D \
  $X265 -x265-params "$X265P:vbv-maxrate=800:vbv-bufsize=800" -b:v 800k -an -f mpegts h265_main.ts
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=640x360:rate=25 -t $D \
  $X265 -x265-params "$X265P:vbv-maxrate=250:vbv-bufsize=250" -b:v 250k -an -f mpegts h265_sub.ts
# 8 s of a 1 kHz sine, mono, 48 kHz: 375 AAC frames of 1024 samples exactly.
ffmpeg -hide_banner -loglevel error -y -f lavfi -i sine=frequency=1000:sample_rate=48000 -t 8 \
  -c:a aac -b:a 64k -ac 1 -f adts audio_aac.adts
