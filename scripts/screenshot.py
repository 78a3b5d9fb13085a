#!/usr/bin/env python3
"""Take the README's picture of the call-number screen from a real run.

    .venv/bin/python scripts/screenshot.py [docs/screen.png]

Publishes a stream with the screen on (1280x720, 5 fps, the integration's own
audio core and ffmpeg arguments) to ffmpeg's RTSP listener, shows a few calls
as a queue board would, and saves the last picture the listener decoded from
the H.264 track.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from custom_components.rtsp_announcer.audio.models import (  # noqa: E402
    StreamSettings,
    VideoSettings,
)
from custom_components.rtsp_announcer.audio.stream import AudioStream  # noqa: E402
from custom_components.rtsp_announcer.audio.video import ScreenStyle  # noqa: E402
from tests.helpers.rtsp import dies_with_parent, free_port  # noqa: E402

CALLS = ("A039 → 1", "A040 → 2", "请 A041 到 1 号窗口", "A042 → 3")


async def main(target: Path) -> None:
    """Publish, show the calls, save a decoded picture to `target`."""
    url = f"rtsp://127.0.0.1:{free_port()}/announce"
    with tempfile.TemporaryDirectory(prefix="screenshot-") as tmp:
        frames = Path(tmp)
        argv = [
            "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
            "-rtsp_flags", "listen", "-listen_timeout", "30",
            # Start decoding at once: the session description says it all.
            "-probesize", "32", "-analyzeduration", "0", "-i", url,
            "-map", "0:v", "-fps_mode", "passthrough", str(frames / "%04d.png"),
        ]  # fmt: skip
        listener = await asyncio.create_subprocess_exec(
            *dies_with_parent(argv), stdin=asyncio.subprocess.DEVNULL
        )
        await asyncio.sleep(0.5)
        stream = AudioStream(
            StreamSettings(url=url, video=VideoSettings(width=1280, height=720, fps=5)),
            screen_style=ScreenStyle(
                background=(16, 32, 64), text_color=(255, 236, 160), history=3
            ),
        )
        await stream.start()
        try:
            await asyncio.wait_for(stream.wait_available(), 15)
            if stream.screen is None:
                msg = "the screen did not start"
                raise RuntimeError(msg)
            for text in CALLS:
                stream.screen.show(text)
                await asyncio.sleep(0.5)
            await asyncio.sleep(2)
        finally:
            await stream.stop()
            with contextlib.suppress(ProcessLookupError):
                listener.terminate()
            await listener.wait()
        decoded = sorted(frames.glob("*.png"))
        print(len(decoded), "frames decoded")
        # The last but one: the last may be cut short by the stop.
        target.write_bytes(decoded[-2].read_bytes())
    print(f"saved {target}")


if __name__ == "__main__":
    asyncio.run(
        main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs/screen.png")
    )
