"""Looking inside the graphs: coordinate affinities, feature-space assignments, adjacencies.

One namespace for two modules: the array helpers of :mod:`dgcn.viz.graphs_compute`
(:func:`coordinate_affinity`, :func:`feature_assignment`, :func:`class_projections`,
:func:`capture_graph_input` return tensors, :func:`closest_class_pairs` a list;
:func:`reprojection_norms` and :func:`reprojection_inputs` find and watch the BatchNorm that
closes each graph's reprojection, with forward pre-hooks) and the plotting helpers of
:mod:`dgcn.viz.graphs_draw`, which return a ``matplotlib.figure.Figure`` built without pyplot
(matplotlib is imported only when a figure is drawn). Used by notebooks/02_coordinate_gcn,
03_feature_gcn, 07_evaluation and 09_image_size.
"""

from dgcn.viz.graphs_compute import (
    capture_graph_input,
    class_projections,
    closest_class_pairs,
    coordinate_affinity,
    feature_assignment,
    feature_pixel,
    node_of_pixel,
    reprojection_inputs,
    reprojection_norms,
)
from dgcn.viz.graphs_draw import (
    adjacency_heatmap,
    plot_affinity,
    plot_assignment,
    plot_matrix_change,
    plot_node_grid,
)

__all__ = [
    "adjacency_heatmap",
    "class_projections",
    "closest_class_pairs",
    "capture_graph_input",
    "coordinate_affinity",
    "feature_assignment",
    "feature_pixel",
    "node_of_pixel",
    "plot_affinity",
    "plot_assignment",
    "plot_matrix_change",
    "plot_node_grid",
    "reprojection_inputs",
    "reprojection_norms",
]
