"""Speed forms of the network's and the losses' operations, apart from the reference math.

Each module computes the same function as the plain form it replaces (a convolution, a
max pool, a matmul, a sum; dropout's mask: the same distribution), in the form XLA:CPU (and,
where measured, a GPU) runs fastest; ``tests/test_fast_path.py``, ``test_convolution.py``,
``test_pooling.py``, ``test_response_norm.py``, ``test_mixed_precision.py`` and
``test_dropout.py`` check them against the plain forms and their definitions.
``Config.conv_forms`` selects the convolution's form.
"""
