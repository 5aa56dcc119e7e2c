"""Jinja2 templates: kernel skeletons (metal/, cuda/), C++ projects (cpp/)."""
