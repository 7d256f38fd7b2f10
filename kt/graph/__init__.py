"""Prerequisite graphs: the data structure and its export formats."""
