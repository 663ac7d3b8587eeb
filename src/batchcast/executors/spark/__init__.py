"""The spark executor in one room: its settings and environments, the child, the job on the cluster."""
