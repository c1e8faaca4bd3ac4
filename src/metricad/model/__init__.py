"""Phase 2, the network: ResNet18 + AdaCos (`torch_model.py`), its training loop, resumable
training states, checkpoints, and the batched forward that embeds images."""
