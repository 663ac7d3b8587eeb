"""Apache Beam: the application's scoring as a pipeline (imported only in the beam executor's environment)."""
