kt data inspect datasets/assist2009_sample/train.csv
kt models
kt train datasets/assist2009_sample/train.csv --model bkt --out runs/bkt
kt evaluate runs/bkt datasets/assist2009_sample/test.csv --json runs/bkt-test.json
kt predict runs/bkt datasets/assist2009_sample/test.csv --out preds.csv
kt predict runs/bkt datasets/assist2009_sample/test.csv --out mastery.csv --mastery
kt export-graph runs/bkt --out graph.html
kt report runs/bkt runs/bkt-test.json --out report.html
