"""What benchmarks/announce.py prints: ours against the naive pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import STREAM_RATE, TEXTS
from .onset import ONSET_DBFS, WINDOW_MS
from .stats import HEADER, Rtf, Series, ratio

if TYPE_CHECKING:
    from .naive import NaiveResult


@dataclass
class OursResult:
    first: dict[tuple[str, str], Series] = field(default_factory=dict)
    hits: dict[str, tuple[int, int]] = field(default_factory=dict)
    heard: dict[tuple[int, str], Series] = field(default_factory=dict)
    heard_first: dict[tuple[int, str], Series] = field(default_factory=dict)
    audio_s: dict[str, float] = field(default_factory=dict)
    lead_ms: dict[str, float] = field(default_factory=dict)
    rtf: dict[str, Rtf] = field(default_factory=dict)
    rtf_native: dict[str, Rtf] = field(default_factory=dict)
    publish_s: dict[int, float] = field(default_factory=dict)


def report(ours: OursResult, naive: NaiveResult) -> None:
    report_first(ours)
    report_heard(ours)
    report_rtf(ours, naive)
    report_naive(naive)
    report_ratios(ours, naive)


def report_first(ours: OursResult) -> None:
    print()
    print("1. Ours, call -> first speech sample written to ffmpeg")
    print(f"   (the item's started_at - the call time; {STREAM_RATE} Hz)")
    print(f"   {'text':<6} {'cache':<7} {HEADER}")
    for (name, cache), series in ours.first.items():
        print(f"   {name:<6} {cache:<7} {series.row()}")
    hits = ", ".join(f"{name} {h}/{n}" for name, (h, n) in ours.hits.items())
    print("   cold: the PCM cache emptied before the call, so the text is synthesised")
    print("   afresh (same text, so cold and cached compare like for like);")
    print(f"   cached: served from audio/cache.py's PcmCache (hits: {hits}).")
    print("   The clock takes a frame every 20 ms: up to 20 ms of every figure is")
    print("   the wait for its next tick, which the naive 'first PCM byte available'")
    print("   figure (4.) does not include.")


def report_heard(ours: OursResult) -> None:
    print()
    print("2. Call -> speech onset decoded at a real RTSP receiver, cold cache")
    print("   (ffmpeg listen-mode server decoding to PCM, arrival time of the onset;")
    print(
        f"   onset = first {WINDOW_MS:g} ms window >= {ONSET_DBFS:g} dBFS;"
        " the integration's AAC publisher over TCP)"
    )
    print(f"   {'rate':<6} {'text':<6} {HEADER}   first sample p50")
    for (rate, name), series in ours.heard.items():
        first = ours.heard_first[rate, name]
        print(f"   {rate:<6} {name:<6} {series.row()}   {first.p50:8.1f} ms")
    report_leads("espeak's", ours.lead_ms)
    starts = ", ".join(f"{r} Hz {s:.2f} s" for r, s in ours.publish_s.items())
    print(f"   Stream start to first audio at the receiver: {starts}.")


def report_rtf(ours: OursResult, naive: NaiveResult) -> None:
    print()
    print("3. Synthesis real-time factor (audio seconds / synthesis seconds, from the")
    print("   median time, best time in brackets)")
    for name in TEXTS:
        print(
            f"   {name:<6} ours  {ours.audio_s[name]:6.2f} s of audio:"
            f" {ours.rtf_native[name]} at espeak's 22050 Hz,"
            f" {ours.rtf[name]} resampled to {STREAM_RATE} Hz"
        )
        print(
            f"   {name:<6} naive {naive.audio_s[name]:6.2f} s of audio:"
            f" {naive.rtf[name]} pyttsx3 to the WAV file,"
            f" {naive.rtf_pcm[name]} on to PCM with ffmpeg"
        )
    print("   ours: SpeechEngine.synthesize, in the benchmark's event loop while the")
    print("   stream publishes. pyttsx3 speaks at 200 words a minute, ours at 175.")


def report_naive(naive: NaiveResult) -> None:
    print()
    print("4. Naive pipeline, in a process of its own")
    print("   pyttsx3.init() (engine kept referenced) + save_to_file(text, tmp.wav) +")
    print("   runAndWait(), completion by the finished-utterance callback, then one")
    print(f"   ffmpeg per utterance converting the WAV to s16le at {STREAM_RATE} Hz.")
    print(f"   {'text':<6} {'to':<15} {HEADER}")
    for name in TEXTS:
        print(f"   {name:<6} {'WAV complete':<15} {naive.wav[name].row()}")
        print(f"   {name:<6} {'first PCM byte':<15} {naive.first[name].row()}")
    print("   Call -> speech onset at the receiver: the above, then one publishing")
    print("   ffmpeg per utterance (`-re`, defaults otherwise: input probing, 0.7 s")
    print("   mux delay) fed the whole converted PCM at once and then end of input,")
    print("   each to a fresh session of the same receiver. (Readers of a relay would")
    print("   also have to re-attach for every utterance; not measured.)")
    print(f"   {'rate':<6} {'text':<6} {HEADER}")
    for (rate, name), series in naive.heard.items():
        print(f"   {rate:<6} {name:<6} {series.row()}")
    report_leads("pyttsx3's", naive.lead_ms)


def report_leads(whose: str, lead_ms: dict[str, float]) -> None:
    leads = ", ".join(f"{n} {v:.0f} ms" for n, v in lead_ms.items())
    print(f"   {whose} leading silence before the onset: {leads}.")


def report_ratios(ours: OursResult, naive: NaiveResult) -> None:
    print()
    print("5. Ratios naive / ours (higher: ours is faster)")
    for name in TEXTS:
        naive_first = naive.first[name]
        for cache in ("cold", "cached"):
            print(
                f"   call -> first sample  {name:<6} vs ours {cache:<7}"
                f" {ratio(naive_first, ours.first[name, cache])}"
            )
    for (rate, name), series in naive.heard.items():
        print(
            f"   call -> heard {rate} Hz {name:<6} vs ours cold    "
            f" {ratio(series, ours.heard[rate, name])}"
        )
