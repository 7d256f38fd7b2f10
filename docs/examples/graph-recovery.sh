kt simulate --kind gated --learners 1000 --schedule curriculum --out sim.csv --truth truth.json
kt learn-graph sim.csv --method mastery --out graph.json
kt graph-eval graph.json truth.json
