kt train datasets/assist2009_sample/train.csv --model bkt --out runs/bkt
kt evaluate runs/bkt datasets/assist2009_sample/test.csv --json next.json
kt evaluate runs/bkt datasets/assist2009_sample/test.csv --protocol multistep --history 10 --horizon 5 --mode acc --json multistep.json
kt cv datasets/assist2009_sample/train.csv --model kc-rate --folds 3 --seed 0 --json cv.json
kt compare datasets/assist2009_sample/train.csv --models majority,kc-rate,bkt --test datasets/assist2009_sample/test.csv --json compare.json
kt report runs/bkt next.json multistep.json cv.json compare.json --out report.html
