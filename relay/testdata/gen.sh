#!/bin/sh
# Regenerates the test fixtures: 4 s of ffmpeg's synthetic test picture at 25 fps,
# a keyframe every 2 s with parameter sets before it, no B-frames (like a real camera).
set -e
ffmpeg -loglevel error -y -f lavfi -i testsrc2=size=640x360:rate=25 -t 4 \
  -c:v libx264 -preset veryfast -tune zerolatency -profile:v baseline -level:v 3.1 -pix_fmt yuv420p \
  -g 50 -keyint_min 50 -sc_threshold 0 -bf 0 -b:v 400k -maxrate 400k -bufsize 400k \
  -x264-params repeat-headers=1 -f h264 cam.h264
ffmpeg -loglevel error -y -f lavfi -i testsrc2=size=640x360:rate=25 -t 4 \
  -c:v libx265 -preset veryfast -pix_fmt yuv420p -b:v 400k \
  -x265-params keyint=50:min-keyint=50:scenecut=0:bframes=0:repeat-headers=1:log-level=error \
  -f hevc cam.h265
# With B-frames (main profile), to test that such streams are refused or reduced to keyframes.
ffmpeg -loglevel error -y -f lavfi -i testsrc2=size=320x180:rate=25 -t 2 \
  -c:v libx264 -preset veryfast -profile:v main -pix_fmt yuv420p \
  -g 25 -keyint_min 25 -sc_threshold 0 -bf 2 -b:v 200k \
  -x264-params repeat-headers=1 -f h264 bframes.h264
