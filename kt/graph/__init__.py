"""Prerequisite graphs: the data structure, how each model gets one, export
formats, and recovery metrics against a known or expert graph."""

from kt.graph.graph import PrerequisiteGraph, read_graph

__all__ = ["PrerequisiteGraph", "read_graph"]
