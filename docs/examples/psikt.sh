kt simulate --kind ou-graph --learners 100 --out sim.csv --truth truth.json
kt simulate --kind ou-graph --learners 20 --seed 1 --out new.csv
kt simulate --kind ou-graph --learners 20 --seed 2 --out test.csv
kt train sim.csv --model psikt --out runs/psikt --epochs 1   # time in days from `timestamp`
kt update runs/psikt new.csv --out runs/psikt2               # the filtered state continues; prints s/update
kt evaluate runs/psikt test.csv --protocol psikt-window      # observe 10, predict 11-20 open loop
kt export-graph runs/psikt --out graph.html
