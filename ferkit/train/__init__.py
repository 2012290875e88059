"""Training: the command line and its checks (config), the routine (loop), its callbacks,
distillation from a teacher and speed measurements. Imports nothing here: config answers a bad
option before Keras loads."""
