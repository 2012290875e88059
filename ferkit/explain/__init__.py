"""Why did the network say that? Saliency maps, Grad-CAM, filter patterns, and how faithful each
map is to the model. The methods, their settings and the measurements: docs/EXPLAIN.md.

    maps = explain.explain(model, images, classes, "gradcam")    # any name of explain.METHODS
    rows = explain.evaluate_methods(model, images, classes, list(explain.METHODS))
    pats = explain.filter_patterns(model, "conv2d_3", filters=16)
"""
from ferkit.explain.core import (GRADCAM_MIN_SIZE, MAPS_MIN_SIZE, VALUE_RANGE, conv_layers,  # noqa: F401
                                 default_filter_layer, default_maps_layer, get_map_layer, gradcam_layer,
                                 logits_model, map_layers)
from ferkit.explain.gradients import (JITTER_SAMPLES, _shift, _unshift, integrated_gradients,  # noqa: F401
                                      smoothgrad, vanilla_saliency)
from ferkit.explain.gradcam import fill_empty, gradcam, negative_gradcam  # noqa: F401
from ferkit.explain.methods import (DEFAULT_METHOD, DEFAULT_SETTINGS, METHODS, describe_settings, explain,  # noqa: F401
                                   saliency_columns)
from ferkit.explain.filters import (DEAD_FRACTION, Patterns, dead_filters, feature_maps, filter_patterns,  # noqa: F401
                                    filters_note)
from ferkit.explain.faithfulness import (COLUMNS, PATCH, auc, baseline_maps, evaluate_methods, format_table,  # noqa: F401
                                         perturbation_curves, randomization_check, randomized_model, spearman)
from ferkit.explain.averages import ClassAverages, class_averages  # noqa: F401
