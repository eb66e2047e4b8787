"""Prediction with trained models: whole scenes, chips, and models exported to ONNX."""
