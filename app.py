"""udm playground: `python app.py [--host H] [--port P]` serves the Gradio app (offline, no share link)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import threading

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from PIL import Image  # noqa: E402

from udm import hot_pipeline, process  # noqa: E402
from udm.app import compare, lab, mainthread, words  # noqa: E402
from udm.device import default_device  # noqa: E402

# A drawn or uploaded digit is size-checked before decoding (udm.app.common.uploaded_picture); past this
# many pixels Pillow itself refuses to decode anything (a decompression bomb) instead of filling the memory.
Image.MAX_IMAGE_PIXELS = 4096 * 4096


def tabs() -> dict:
    """Tab title → build function: every registered process that has a tab, then Compare and the Lab."""
    out = {}
    for p in process.every():
        if p.tab is not None:
            title, where = p.tab
            module, function = where.split(":")
            out[title] = getattr(importlib.import_module(module), function)
    return {**out, "Compare": compare.build, "Lab": lab.build}


# Gradio's upload route (a drawn or uploaded digit) accepts 1 MB at the most. At most 256 sessions keep a
# trajectory for their scrub slider (each also expires, udm.app.common.STATE_SECONDS).
LAUNCH = dict(share=False, footer_links=["api"], max_file_size="1mb", state_session_capacity=256, css=words.CSS)


def build() -> gr.Blocks:
    # delete_cache: generated files older than 2 h are removed every hour
    with gr.Blocks(
        title="udm: the unified diffusion model", analytics_enabled=False, delete_cache=(3600, 7200)
    ) as demo:
        gr.Markdown("# udm: the unified diffusion model", elem_classes="udm-title")
        gr.HTML(words.OPENING)
        with gr.Tabs(overflow_behavior="wrap"):  # on a phone every tab stays in sight
            for name, make in tabs().items():
                with gr.Tab(name):
                    make()  # a Blocks built inside this context renders itself here
    demo.queue(max_size=32, default_concurrency_limit=2)
    return demo


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """--host and --port; their defaults come from the environment a Space sets (GRADIO_SERVER_NAME/PORT)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    return p.parse_args(argv)


def _warm() -> None:
    from udm import data
    from udm.app import frontier

    data.images("mnist28")  # ~4 s to read: the Hot and Encoding tabs ask for it as a page opens
    hot_pipeline.hot_model("mnist28")
    frontier.warm()


def steps_on_main_thread() -> bool:
    """Whether the main thread serves the runs' steps and the Lab's training: on the CPU, where only one
    thread may run torch's two OpenMP threads at full speed (udm.app.mainthread); not on a GPU, nor on
    ZeroGPU (`spaces`), which runs the calls in processes of its own; never with UDM_MAIN_THREAD=0."""
    if os.environ.get("UDM_MAIN_THREAD", "1") == "0" or importlib.util.find_spec("spaces") is not None:
        return False
    return default_device().type == "cpu"


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    demo = build()
    demo.launch(**LAUNCH, server_name=args.host, server_port=args.port, prevent_thread_lock=True, quiet=True)
    print(f"udm is serving on http://{args.host}:{args.port} (offline: no share link)", flush=True)
    # The server is up at once; MNIST and the default model load in the background so the first page and
    # the first Generate are quick, then Compare's measured-frontier charts are drawn once, so that opening
    # that panel is quick too.
    threading.Thread(target=_warm, daemon=True).start()
    if not steps_on_main_thread():
        demo.block_thread()
        return
    # The main thread, which would only wait, runs the sampling runs' network steps (udm.app.mainthread).
    try:
        mainthread.serve(lambda: demo.is_running)
    except (KeyboardInterrupt, OSError):
        demo.close()


if __name__ == "__main__":
    main()
