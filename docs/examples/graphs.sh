kt simulate --kind gated --learners 300 --out sim.csv --truth truth.json
kt train sim.csv --model bkt --out runs/bkt
kt export-graph runs/bkt --out graph.html                # format from the suffix; the gated graph at this size
kt export-graph runs/bkt --out graph.json --top-k 30 --reduce --method mastery
kt export-graph runs/bkt --out graph.dot --method causal-support --threshold 0.6
kt export-graph runs/bkt --out stable.html --bootstrap 20 --min-stability 0.9 --method mastery  # refits in seconds
kt graph-eval graph.json truth.json --json scores.json
