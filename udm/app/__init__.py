"""The Gradio playground: one module per tab, each building its own `gr.Blocks`; `app.py` assembles them."""
