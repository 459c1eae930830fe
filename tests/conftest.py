import os

import pytest


@pytest.fixture(scope="session")
def _tiny_root(tmp_path_factory):
    """Tiny hot-diffusion checkpoints (a few training steps each), made once per test session."""
    from udm.train import ColdTrainConfig, default_config, train, train_cold

    root = tmp_path_factory.mktemp("checkpoints")
    for name, steps in (("moons", 30), ("digits8", 3), ("mnist28", 2)):
        cfg = default_config(name, small=True, steps=steps, batch_size=32, stats_grid=5, stats_per_t=8)
        train(cfg, root / f"hot-{name}", progress=False)
    train_cold(ColdTrainConfig(small=True, steps=2, batch_size=16, T=10), root / "cold-mnist28", progress=False)
    from udm.distill import DistillConfig, distill

    old = os.environ.get("UDM_CHECKPOINTS")
    os.environ["UDM_CHECKPOINTS"] = str(root)  # the teacher is the tiny hot-mnist28
    try:
        cfg = DistillConfig(teacher_steps=4, paths=8, batch_size=4, seconds=0.5, eval_every=1e9, eval_samples=8)
        distill(cfg, root / "hot-mnist28-distilled", progress=lambda m: None)
    finally:
        from udm.process import forget_models

        forget_models()
        if old is None:
            del os.environ["UDM_CHECKPOINTS"]
        else:
            os.environ["UDM_CHECKPOINTS"] = old
    from udm.train import encoding_config, train_encoding

    for name in ("mnist28", "en5"):
        train_encoding(
            encoding_config(name, small=True, steps=3, batch_size=16), root / f"encoding-{name}", progress=False
        )
    from udm import textmodel

    for process in textmodel.PROCESSES:
        for name in ("en5", "zh4"):
            # calibrated, as shipped ones are: an edit model against the tiny mask model beside it
            cfg = textmodel.default_config(process, name, small=True, steps=2, batch_size=16, calibrate=100)
            textmodel.train(cfg, root / f"{process}-{name}", progress=False)
    return root


@pytest.fixture(scope="module")
def tiny_checkpoints(_tiny_root):
    """Point the checkpoint root at the tiny checkpoints for one test module, then restore it."""
    from udm.process import forget_models as forget

    old = os.environ.get("UDM_CHECKPOINTS")
    os.environ["UDM_CHECKPOINTS"] = str(_tiny_root)
    forget()
    yield _tiny_root
    forget()
    if old is None:
        del os.environ["UDM_CHECKPOINTS"]
    else:
        os.environ["UDM_CHECKPOINTS"] = old


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tiny_checkpoints):
    """The whole app launched on a free port over the tiny checkpoints; its URL."""
    import app

    demo = app.build()
    port = _free_port()
    demo.launch(**app.LAUNCH, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def client(app_url):
    """A gradio_client for the app on the tiny checkpoints."""
    from gradio_client import Client

    return Client(app_url, verbose=False)
