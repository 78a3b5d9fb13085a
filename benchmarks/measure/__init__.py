"""What the latency benchmarks share: statistics, onsets, targets, the naive baseline.

* `stats`: nearest-rank `percentile`, a `Series` of milliseconds, real-time factors.
* `onset`: where speech starts in decoded PCM (the first 5 ms window at -40 dBFS)
  and when it arrived at a real RTSP receiver.
* `harness`: an in-process Home Assistant, SIGTERM handling, the closing clean-up
  line, the machine line every report starts with.
* `targets`: a stream that takes announcements, through Home Assistant's action or
  on the audio core alone, and a watch on when its items start.
* `naive`: the naive pyttsx3 + ffmpeg pipeline, measured in a process of its own.
* `report`: what benchmarks/announce.py prints.

benchmarks/announce.py and benchmarks/onset.py are the programs that use them.
"""

from __future__ import annotations

SHORT = "Turn on the kitchen lights."
_SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the old river bank.",
    "Please remember to close the garage door before you leave the house today.",
    "The washing machine has finished and the laundry is ready to be dried.",
    "Someone is at the front door, and the parcel should be taken inside soon.",
)
# About 300 words, like the long text of the field notes; benchmarks/speech.py
# and benchmarks/announce.py speak both.
LONG = " ".join(_SENTENCES * 6)

TEXTS = {"short": SHORT, "long": LONG}
LANGUAGE = "en"
RATES = (24000, 48000)
STREAM_RATE = 24000
FFMPEG = "ffmpeg"
SEED = 20250504
