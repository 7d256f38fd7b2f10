"""Read a graph.json (format 2) with kt, and its typed arrays with NumPy alone."""

import base64
import json
import zlib

import numpy as np

import kt
from kt.graph.graph import read_graph

frame, truth = kt.simulate("gated", learners=300, seed=0)
frame.write_csv("sim.csv")
model = kt.train("sim.csv", "bkt", out="runs/bkt", verbose=False)  # writes runs/bkt/graph.json
graph = kt.prerequisite_graph("runs/bkt", verbose=False)  # the default graph of sim.csv (gated at this size)
kt.export_graph(graph, "graph.json")

g = read_graph("graph.json")
print(g.method, g.prob.shape, g.edges(threshold=0.5)[:3])  # (source, target, probability)

a = json.loads(open("runs/bkt/graph.json").read())["prob"]  # {"dtype", "shape", "encoding", "data"}
prob = np.frombuffer(zlib.decompress(base64.b64decode(a["data"])), a["dtype"]).reshape(a["shape"])
print(prob.shape)
