"""Shared plumbing for the FER2013 toolkit: errors, atomic files, the CLI wrapper, training,
explanation methods and the report."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter off stderr
