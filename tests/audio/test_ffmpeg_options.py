"""Asking ffmpeg which options it knows, without a real ffmpeg."""

from __future__ import annotations

from pathlib import Path

from custom_components.rtsp_announcer.audio import ffmpeg
from custom_components.rtsp_announcer.audio.ffmpeg import knows_option, publisher_args
from custom_components.rtsp_announcer.audio.models import StreamSettings


def fake_ffmpeg(tmp_path: Path, help_text: str) -> str:
    """A script that prints `help_text` and counts how often it ran."""
    script = tmp_path / "ffmpeg"
    (tmp_path / "help.txt").write_text(help_text)
    script.write_text(
        f"#!/bin/sh\necho run >> {tmp_path}/runs\ncat {tmp_path}/help.txt\n"
    )
    script.chmod(0o755)
    return str(script)


async def test_an_option_in_the_help_is_known_and_the_help_is_asked_once(
    tmp_path: Path,
) -> None:
    binary = fake_ffmpeg(
        tmp_path,
        "-re                 read input at native frame rate\n"
        "-readrate_initial_burst  initial burst\n",
    )
    assert await knows_option(binary, "readrate_initial_burst")
    assert await knows_option(binary, "re")
    assert not await knows_option(binary, "readrate")
    assert (tmp_path / "runs").read_text().count("run") == 1
    ffmpeg._HELP.pop(binary)


async def test_an_older_ffmpeg_gets_no_unknown_option(tmp_path: Path) -> None:
    binary = fake_ffmpeg(
        tmp_path, "-re  read input at native frame rate\n-readrate speed  x\n"
    )
    known = await knows_option(binary, "readrate_initial_burst")
    assert not known
    argv = publisher_args(
        binary, StreamSettings(url="rtsp://h/a"), "pipe:0", no_read_burst=known
    )
    assert "-readrate_initial_burst" not in argv
    assert "-re" in argv
    ffmpeg._HELP.pop(binary)


async def test_a_missing_binary_knows_nothing_and_is_asked_again(
    tmp_path: Path,
) -> None:
    binary = str(tmp_path / "nowhere" / "ffmpeg")
    assert not await knows_option(binary, "re")
    assert binary not in ffmpeg._HELP


def test_a_newer_ffmpeg_reads_no_further_ahead_than_real_time() -> None:
    argv = publisher_args(
        "ffmpeg", StreamSettings(url="rtsp://h/a"), "pipe:0", no_read_burst=True
    )
    at = argv.index("-readrate_initial_burst")
    assert argv[at + 1] == "0"
    # An input option: before the input.
    assert argv.index("-re") < at < argv.index("-i")
