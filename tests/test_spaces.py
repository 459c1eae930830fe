"""ZeroGPU: sampling functions are wrapped with spaces.GPU only where the `spaces` package imports."""

import sys
import types

from udm.app.gpu import GPU_SECONDS, on_gpu


def sample(x):
    return x + 1


def test_without_spaces_nothing_changes(monkeypatch):
    monkeypatch.setitem(sys.modules, "spaces", None)  # import spaces → ImportError
    assert on_gpu(sample) is sample


def _fake_spaces(calls):
    def GPU(duration=None):
        def wrap(fn):
            def wrapped(*a, **k):
                calls.append(duration)
                return fn(*a, **k)

            wrapped.on_zero_gpu = True
            return wrapped

        return wrap

    return types.SimpleNamespace(GPU=GPU)


def test_with_spaces_the_function_runs_under_spaces_gpu(monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "spaces", _fake_spaces(calls))
    wrapped = on_gpu(sample)
    assert wrapped is not sample and wrapped(1) == 2 and calls == [GPU_SECONDS]


SAMPLING = {
    "hot_generate",
    "cold_run",
    "mask_run",
    "edit_run",
    "encoding_run",
    "encoding_round_trip",
    "compare_run",
    "compare_sweep",
    "lab_sample",
}


def test_every_sampling_event_runs_under_spaces_gpu_and_shares_one_pool(monkeypatch):
    monkeypatch.setitem(sys.modules, "spaces", _fake_spaces([]))
    import app

    demo = app.build()
    named = {f.api_name: f for f in demo.fns.values() if f.api_name and f.api_visibility == "public"}
    wrapped = {name for name, f in named.items() if getattr(f.fn, "on_zero_gpu", False)}
    assert wrapped == SAMPLING  # cheap events (scrubs, forward strips) stay as they are
    pooled = {name for name, f in named.items() if f.concurrency_id == "sampling"}
    assert pooled == SAMPLING and {named[n].concurrency_limit for n in SAMPLING} == {2}
    # a Lab training run has a worker of its own (one on the server at a time), beside the sampling pool
    assert (named["lab_train"].concurrency_id, named["lab_train"].concurrency_limit) == ("lab-training", 1)


def test_host_and_port_from_the_command_line_or_the_spaces_environment(monkeypatch):
    import app

    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    a = app.arguments([])
    assert (a.host, a.port) == ("127.0.0.1", 7860)  # local by default
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7861")
    a = app.arguments([])
    assert (a.host, a.port) == ("0.0.0.0", 7861)
    a = app.arguments(["--host", "127.0.0.2", "--port", "8080"])
    assert (a.host, a.port) == ("127.0.0.2", 8080)


def test_the_main_thread_serves_the_steps_on_the_cpu_only(monkeypatch):
    """app.py's main-thread loop (udm.app.mainthread) is for torch's OpenMP threads on the CPU: not on a GPU,
    not on ZeroGPU (its calls run in processes of their own), not with UDM_MAIN_THREAD=0."""
    import importlib.util

    import torch

    import app

    monkeypatch.delenv("UDM_MAIN_THREAD", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert app.steps_on_main_thread()
    monkeypatch.setenv("UDM_MAIN_THREAD", "0")
    assert not app.steps_on_main_thread()
    monkeypatch.delenv("UDM_MAIN_THREAD")
    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "spaces" else find(name, *a))
    assert not app.steps_on_main_thread()
    monkeypatch.setattr(importlib.util, "find_spec", find)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert not app.steps_on_main_thread()
