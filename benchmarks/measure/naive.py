"""The naive baseline: pyttsx3 to a WAV file, one ffmpeg per utterance.

pyttsx3 re-initialises libespeak-ng in another output mode, so it must never share
a process with our engine: `run_naive` measures it in a child process
(`python -m benchmarks.measure.naive CONFIG RESULT`): pyttsx3 `save_to_file` +
`runAndWait` to a temporary WAV, one ffmpeg per utterance converting it to s16le
at the stream rate, and, for what a reader hears, one more ffmpeg per utterance
publishing that PCM with `-re` and ffmpeg's defaults to a fresh session of the
same kind of receiver.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyttsx3

from tests.helpers.rtsp import ListenReceiver, dies_with_parent

from . import FFMPEG, SEED, STREAM_RATE, TEXTS
from .harness import cancel_on_sigterm, terminate
from .onset import heard_at, lead_ms
from .stats import Rtf, Series, real_time_factor

NAIVE_HEARD_TIMEOUT = 20.0
WORKER_TIMEOUT = 900.0


@dataclass
class NaiveRender:
    called: float
    wav_at: float
    first_at: float
    done_at: float
    pcm: bytes
    audio_s: float


class NaiveTts:
    """pyttsx3 the way a naive integration uses it; touched from one thread only."""

    def __init__(self, workdir: Path) -> None:
        # init() caches engines in a WeakValueDictionary: without this strong
        # reference every call builds a new engine, whose first runAndWait()
        # returns before the file is written.
        self._engine = pyttsx3.init()
        self._done = threading.Event()
        self._engine.connect("finished-utterance", self._finished)
        self._workdir = workdir
        self._count = 0

    def _finished(self, **_: object) -> None:
        self._done.set()

    def to_wav(self, text: str) -> Path:
        self._count += 1
        path = self._workdir / f"utterance-{self._count}.wav"
        engine = pyttsx3.init()
        self._done.clear()
        engine.save_to_file(text, str(path))
        for _ in range(3):
            engine.runAndWait()
            # Only the callback says the file is complete.
            if self._done.wait(2.0):
                return path
        msg = "pyttsx3 never finished the utterance"
        raise RuntimeError(msg)

    def render(self, text: str, rate: int) -> NaiveRender:
        called = time.monotonic()
        path = self.to_wav(text)
        wav_at = time.monotonic()
        try:
            with subprocess.Popen(
                [FFMPEG, "-hide_banner", "-loglevel", "error", "-i", str(path),
                 "-f", "s16le", "-ac", "1", "-ar", str(rate), "pipe:1"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                bufsize=0,
            ) as proc:  # fmt: skip
                assert proc.stdout is not None
                # Unbuffered, so the first read returns with the first bytes:
                # what a streaming writer could send on before ffmpeg is done.
                first = proc.stdout.read(65536)
                first_at = time.monotonic()
                rest = proc.stdout.read()
                done_at = time.monotonic()
            if proc.returncode != 0 or not first:
                msg = f"ffmpeg could not convert {path} (status {proc.returncode})"
                raise RuntimeError(msg)
            with wave.open(str(path), "rb") as wav:
                audio_s = wav.getnframes() / wav.getframerate()
        finally:
            path.unlink(missing_ok=True)
        return NaiveRender(
            called=called,
            wav_at=wav_at,
            first_at=first_at,
            done_at=done_at,
            pcm=first + rest,
            audio_s=audio_s,
        )


def naive_publisher_args(url: str, rate: int) -> list[str]:
    # What a naive script runs: real-time pacing, everything else default
    # (input probing, the 0.7 s mux delay, the encoder's default bit rate).
    return [FFMPEG, "-hide_banner", "-loglevel", "error", "-re",
            "-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0",
            "-c:a", "aac", "-f", "rtsp", "-rtsp_transport", "tcp", url]  # fmt: skip


async def naive_heard_ms(
    pool: ThreadPoolExecutor, tts: NaiveTts, receiver: ListenReceiver, text: str
) -> float | None:
    loop = asyncio.get_running_loop()
    # The previous publisher's session must be over and a listener up again.
    await receiver.wait_ready(timeout=15)
    base = receiver.total_samples
    called = time.monotonic()
    render = await loop.run_in_executor(pool, tts.render, text, receiver.rate)
    publisher = await asyncio.create_subprocess_exec(
        *dies_with_parent(naive_publisher_args(receiver.url, receiver.rate)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert publisher.stdin is not None
    try:
        # Buffered by the transport: ffmpeg takes it at real-time pace. The
        # end of input matters: probing waits for 5 s of audio or the end.
        publisher.stdin.write(render.pcm)
        publisher.stdin.write_eof()
        arrived = await heard_at(receiver, base, NAIVE_HEARD_TIMEOUT)
    finally:
        if not publisher.stdin.transport.is_closing():
            publisher.stdin.transport.abort()
        await terminate(publisher, 3)
    return None if arrived is None else (arrived - called) * 1000


async def measure_naive(config: dict[str, Any]) -> dict[str, Any]:
    cancel_on_sigterm()
    loop = asyncio.get_running_loop()
    rng = np.random.default_rng(SEED + 1)
    names = list(TEXTS)
    first = {name: Series() for name in names}
    wav = {name: Series() for name in names}
    synth_s: dict[str, list[float]] = {name: [] for name in names}
    pcm_s: dict[str, list[float]] = {name: [] for name in names}
    audio_s: dict[str, float] = {}
    leads: dict[str, float] = {}
    heard: dict[str, Series] = {}
    workdir = Path(config["workdir"])
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="naive-tts") as pool:
        tts = await loop.run_in_executor(pool, NaiveTts, workdir)
        for text in TEXTS.values():
            for _ in range(2):
                await loop.run_in_executor(pool, tts.render, text, STREAM_RATE)
        for _ in range(config["runs"]):
            for index in rng.permutation(len(names)):
                name = names[index]
                render = await loop.run_in_executor(
                    pool, tts.render, TEXTS[name], STREAM_RATE
                )
                first[name].values.append((render.first_at - render.called) * 1000)
                wav[name].values.append((render.wav_at - render.called) * 1000)
                synth_s[name].append(render.wav_at - render.called)
                pcm_s[name].append(render.done_at - render.called)
                audio_s[name] = render.audio_s
                leads[name] = lead_ms(render.pcm, STREAM_RATE)
        for rate in config["heard_rates"]:
            async with ListenReceiver(rate=rate) as receiver:
                for name in names:
                    heard[f"{rate}/{name}"] = Series()
                for _ in range(config["heard_runs"]):
                    for index in rng.permutation(len(names)):
                        name = names[index]
                        heard[f"{rate}/{name}"].record(
                            await naive_heard_ms(pool, tts, receiver, TEXTS[name])
                        )
    return {
        "first": {name: s.to_json() for name, s in first.items()},
        "wav": {name: s.to_json() for name, s in wav.items()},
        "heard": {key: s.to_json() for key, s in heard.items()},
        "audio_s": audio_s,
        "lead_ms": leads,
        "rtf": {name: real_time_factor(audio_s[name], synth_s[name]) for name in names},
        "rtf_pcm": {
            name: real_time_factor(audio_s[name], pcm_s[name]) for name in names
        },
    }


def naive_worker(config_path: Path, result_path: Path) -> None:
    config = json.loads(config_path.read_text(encoding="utf-8"))
    result = asyncio.run(measure_naive(config))
    result_path.write_text(json.dumps(result), encoding="utf-8")


@dataclass
class NaiveResult:
    first: dict[str, Series]
    wav: dict[str, Series]
    heard: dict[tuple[int, str], Series]
    audio_s: dict[str, float]
    lead_ms: dict[str, float]
    rtf: dict[str, Rtf]
    rtf_pcm: dict[str, Rtf]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NaiveResult:
        heard: dict[tuple[int, str], Series] = {}
        for key, value in data["heard"].items():
            rate, name = key.split("/")
            heard[int(rate), name] = Series.from_json(value)
        return cls(
            first={k: Series.from_json(v) for k, v in data["first"].items()},
            wav={k: Series.from_json(v) for k, v in data["wav"].items()},
            heard=heard,
            audio_s=data["audio_s"],
            lead_ms=data["lead_ms"],
            rtf={k: Rtf(*v) for k, v in data["rtf"].items()},
            rtf_pcm={k: Rtf(*v) for k, v in data["rtf_pcm"].items()},
        )


async def run_naive(runs: int, heard_runs: int, heard_rates: list[int]) -> NaiveResult:
    repo = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory(prefix="bench-announce-") as tmp:
        workdir = Path(tmp, "wav")
        workdir.mkdir()
        config_path, result_path = Path(tmp, "config.json"), Path(tmp, "result.json")
        config = {
            "runs": runs,
            "heard_runs": heard_runs,
            "heard_rates": heard_rates,
            "workdir": str(workdir),
        }
        config_path.write_text(json.dumps(config), encoding="utf-8")
        worker = await asyncio.create_subprocess_exec(
            *dies_with_parent([
                sys.executable, "-m", "benchmarks.measure.naive",
                str(config_path), str(result_path),
            ]),
            cwd=repo,
            stdin=asyncio.subprocess.DEVNULL,
            # pyttsx3 prints "Audio saved to ..." on every call.
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            async with asyncio.timeout(WORKER_TIMEOUT):
                _, errors = await worker.communicate()
        finally:
            if worker.returncode is None:
                # SIGTERM lets it run its own clean-up; SIGKILL if it does not.
                await terminate(worker, 5)
        if worker.returncode != 0:
            tail = errors.decode(errors="replace")[-4000:]
            msg = f"the naive worker failed (status {worker.returncode}):\n{tail}"
            raise RuntimeError(msg)
        return NaiveResult.from_json(json.loads(result_path.read_text("utf-8")))


if __name__ == "__main__":
    naive_worker(Path(sys.argv[1]), Path(sys.argv[2]))
