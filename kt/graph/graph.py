"""The prerequisite graph type and ``graph.json``, as seen from the graph layer.

Defined in :mod:`kt.data.graph`, below the models (PSI-KT returns its learned
graph as a :class:`PrerequisiteGraph`); this module keeps the names where graph
code and users have always found them.
"""

from kt.data.graph import (
    GRAPH_FORMAT,
    LIST_FORMAT,
    MATRICES,
    METHODS,
    PrerequisiteGraph,
    decode_array,
    dumps,
    encode_array,
    read_graph,
)

__all__ = [
    "GRAPH_FORMAT",
    "LIST_FORMAT",
    "MATRICES",
    "METHODS",
    "PrerequisiteGraph",
    "decode_array",
    "dumps",
    "encode_array",
    "read_graph",
]
