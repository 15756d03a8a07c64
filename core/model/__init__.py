"""The encoders: the project's CNN, the frozen musicnn reference, saving and loading, and embedding."""
