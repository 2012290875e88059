"""Shared plumbing for the FER2013 toolkit: errors, atomic files, the CLI wrapper, training,
explanation methods and the report."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter off stderr
# TensorFlow enables its oneDNN kernels only on CPUs with AVX-512; on AVX2 machines (some of
# this project's) they are off, yet they cut the CPU time of a training step by about a third
# (docs/PERFORMANCE.md). Every script imports fer before TensorFlow. TF_ENABLE_ONEDNN_OPTS=0 wins.
_ONEDNN_SET_BY_USER = "TF_ENABLE_ONEDNN_OPTS" in os.environ
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def plain_kernels_for_input_gradients():
    """Call before TensorFlow loads, in a script that takes gradients with respect to the input
    (saliency, filter patterns): oneDNN's kernels for them corrupt the heap on AVX-512 CPUs
    (TensorFlow 2.21; docs/PERFORMANCE.md). A TF_ENABLE_ONEDNN_OPTS the user set still wins."""
    if not _ONEDNN_SET_BY_USER:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
