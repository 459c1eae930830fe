"""udm: the Unified Diffusion Model: forward process, posterior q(x_0|x_t), reverse rule."""

__version__ = "0.1.0"
