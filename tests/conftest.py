import os

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory):
    """Tiny hot-diffusion checkpoints (a few training steps each) in a temporary checkpoint root."""
    from udm import pipeline
    from udm.train import default_config, train

    root = tmp_path_factory.mktemp("checkpoints")
    for name, steps in (("moons", 30), ("digits8", 3), ("mnist28", 2)):
        cfg = default_config(name, small=True, steps=steps, batch_size=32, stats_grid=5, stats_per_t=8)
        train(cfg, root / f"hot-{name}", progress=False)
    old = os.environ.get("UDM_CHECKPOINTS")
    os.environ["UDM_CHECKPOINTS"] = str(root)
    pipeline.hot_model.cache_clear()
    yield root
    pipeline.hot_model.cache_clear()
    if old is None:
        del os.environ["UDM_CHECKPOINTS"]
    else:
        os.environ["UDM_CHECKPOINTS"] = old
