kt simulate --kind gated --learners 300 --out sim.csv --truth truth.json
kt learn-graph sim.csv --out graph.json
kt graph-eval graph.json expert-edges.csv --threshold 0.5
