"""An example churn model in the layout batchcast's command contract expects."""
