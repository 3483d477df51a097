"""Applications built on the models: ERF, Grad-CAM, ONNX export, style transfer, optimizer trajectories."""
