"""The data plane: column schemas, inputs, training profiles and input checks, the read-ahead."""
