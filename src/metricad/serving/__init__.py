"""Phase 5, the trained model in use: the detector bundle that `predict` loads, and the one
torch module that the ONNX export traces."""
