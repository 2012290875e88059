"""Shared plumbing for the FER2013 toolkit: errors, atomic files, the CLI wrapper, training,
explanation methods and the report."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter off stderr
# TensorFlow enables its oneDNN kernels only on CPUs with AVX-512; on AVX2 machines such as
# this project's they are off, yet they cut the CPU time of a training step by about a third
# (docs/PERFORMANCE.md). Every script imports fer before TensorFlow. TF_ENABLE_ONEDNN_OPTS=0 wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
