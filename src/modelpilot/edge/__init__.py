"""Models at the edge: a signed ONNX bundle, an on-device agent, the fleet loop at home.

The device side (:mod:`modelpilot.edge.agent`, :mod:`modelpilot.edge.ed25519`) imports only
onnxruntime, NumPy and the standard library, so this package's ``__init__`` imports nothing:
a device can run the agent from a copy of those two files. docs/edge.md tells the whole flow.
"""
