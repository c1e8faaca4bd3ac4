"""Phase 2, the network: ResNet18 (`torch_model.py`) + a metric head (`heads/`), its training
loop, resumable training states, checkpoints, and the batched forward that embeds images."""
