import os

import pytest


@pytest.fixture(scope="session")
def _tiny_root(tmp_path_factory):
    """Tiny hot-diffusion checkpoints (a few training steps each), made once per test session."""
    from udm.train import default_config, train

    root = tmp_path_factory.mktemp("checkpoints")
    for name, steps in (("moons", 30), ("digits8", 3), ("mnist28", 2)):
        cfg = default_config(name, small=True, steps=steps, batch_size=32, stats_grid=5, stats_per_t=8)
        train(cfg, root / f"hot-{name}", progress=False)
    return root


@pytest.fixture(scope="module")
def tiny_checkpoints(_tiny_root):
    """Point the checkpoint root at the tiny checkpoints for one test module, then restore it."""
    from udm import pipeline

    old = os.environ.get("UDM_CHECKPOINTS")
    os.environ["UDM_CHECKPOINTS"] = str(_tiny_root)
    pipeline.forget_models()
    yield _tiny_root
    pipeline.forget_models()
    if old is None:
        del os.environ["UDM_CHECKPOINTS"]
    else:
        os.environ["UDM_CHECKPOINTS"] = old
