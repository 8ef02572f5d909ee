"""The serving stage: the real Triton Inference Server and the model it runs.

``server`` starts and stops the ``tritonserver`` that the ``nvidia-pytriton`` wheel carries (python
backend with onnxruntime) on a model repository; ``triton_model`` is the python-backend model that
every version folder carries as ``model.py`` (it imports only the standard library, numpy,
onnxruntime and its folder's own ``decoding.py`` and ``integrity.py``). ``cli`` owns ``edgeasr
serve``. Imports only the runtime core.
"""
