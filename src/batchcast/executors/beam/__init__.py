"""The beam executor in one room: its settings and environment, the child, the pipeline, the publishing."""
