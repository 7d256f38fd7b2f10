kt simulate --kind gated --learners 300 --schedule curriculum --out sim.csv --truth truth.json
kt learn-graph sim.csv --method transition --out transition.json
kt learn-graph sim.csv --out stable.json --bootstrap 20 --seed 0 --method mastery
kt learn-graph sim.csv --out stable.mmd --bootstrap 20 --min-stability 0.9 --method mastery
kt graph-eval stable.json truth.json
kt graph-eval transition.json truth.json
