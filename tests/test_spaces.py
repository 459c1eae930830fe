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


def test_the_tabs_wrap_their_sampling_events(monkeypatch):
    monkeypatch.setitem(sys.modules, "spaces", _fake_spaces([]))
    from udm.app import hot

    tab = hot.build()
    fns = {f.api_name: f.fn for f in tab.fns.values()}
    assert getattr(fns["hot_generate"], "on_zero_gpu", False)
    assert not getattr(fns["hot_scrub"], "on_zero_gpu", False)  # cheap events stay as they are
