"""The render profile's step accounting: a step's CPU time excludes the steps inside it,
threads are kept apart, wrapped functions are restored, child programs land in their step."""

from __future__ import annotations

import threading
import time
import types

from cantus.bench.render_profile import CHILD_PROGRAM_STEPS, StepProfiler, patched


def spin(seconds: float) -> None:
    started = time.thread_time()
    while time.thread_time() - started < seconds:
        pass


def test_nested_steps_are_charged_once():
    profiler = StepProfiler()
    with profiler.step("outer"):
        spin(0.05)
        with profiler.step("inner"):
            spin(0.1)
    assert 0.04 <= profiler.seconds["outer"] < 0.09
    assert 0.09 <= profiler.seconds["inner"] < 0.15
    assert profiler.calls == {"outer": 1, "inner": 1}


def test_threads_are_accounted_apart():
    profiler = StepProfiler()

    def work() -> None:
        with profiler.step("worker"):
            spin(0.05)

    with profiler.step("main"):
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert profiler.seconds["main"] < 0.03  # the worker's time is not the main thread's
    assert profiler.seconds["worker"] >= 0.04


def test_wrapped_functions_are_restored_and_named_by_their_arguments():
    module = types.SimpleNamespace(encode=lambda fmt: fmt.upper())
    profiler = StepProfiler()
    with patched([(module, "encode", profiler.wrap(module.encode, lambda fmt: f"encode {fmt}"))]):
        assert module.encode("mp3") == "MP3"
    assert module.encode("wav") == "WAV" and profiler.calls == {"encode mp3": 1}
    assert set(CHILD_PROGRAM_STEPS) >= {"lilypond", "ffmpeg mp3", "ffmpeg segment opus"}
