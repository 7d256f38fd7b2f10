kt train datasets/assist2009_sample/train.csv --model bkt --out runs/bkt-forgets --set forgets=true
kt predict runs/bkt-forgets datasets/assist2009_sample/test.csv --out mastery.csv --mastery
kt export-params runs/bkt-forgets --out params.csv
