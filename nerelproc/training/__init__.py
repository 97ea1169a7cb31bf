"""Training with torch: the joint model, data preparation, the training loop,
checkpoints, threshold tuning, export to the runtime, and the default encoder."""
