"""The export stage: a checkpoint made into checked, versioned model files for Triton and devices.

``target`` (what an ``export/NAME.toml`` asks for), ``onnx`` (the graph and its parity check),
``quantize`` (int8, frontend in float), ``tuning`` (the shipped beam search's weights),
``tensorrt`` (engines, where TensorRT and a GPU exist), ``pipeline`` (the steps in order, checks
before anything is written) and ``repository`` (the Triton model repository: atomic versions,
configs, model cards, the serving code each version carries). ``cli`` owns ``edgeasr export``.
Imports serving (only to ship its Triton model file), training, data and the runtime core.
"""
