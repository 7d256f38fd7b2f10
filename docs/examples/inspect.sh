kt data inspect datasets/assist2009_sample/train.csv --json
kt data inspect datasets/assist2009_sample/train.csv --map skill_id=item_id
kt data convert datasets/assist2009_sample/train.csv --out train.parquet
