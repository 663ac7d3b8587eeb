"""The model: a class with fit and predict, usable by batchcast's Python contract too."""

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


class Model:
    def __init__(self, C: float = 1.0):
        self.pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=C))

    def fit(self, X, y):
        self.pipeline.fit(X, y)
        return self

    def predict(self, X):
        return self.pipeline.predict(X)
