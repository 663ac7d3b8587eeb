"""The Python contract: a model class, its files, the one scorer and the one verified loader."""
