kt data convert datasets/assist2009_sample/train.csv --out train.parts --partitions 4   # streamed: never loaded whole
kt train train.parts --model dkt --out runs/dkt --epochs 1 --config dkt.toml            # DKT streams the partitions
kt data inspect train.parts
