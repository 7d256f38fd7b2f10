kt simulate --kind bkt --learners 500 --kcs 3 --steps 20 --out sim.csv --truth truth.json
kt train sim.csv --model bkt --out runs/bkt --valid-frac 0 --set num_fits=5
kt export-params runs/bkt --out params.csv
