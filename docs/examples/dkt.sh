kt train datasets/assist2009_sample/train.csv --model dkt --out runs/dkt --epochs 1 --config dkt.toml
kt evaluate runs/dkt datasets/assist2009_sample/test.csv --eval-mode full
kt predict runs/dkt datasets/assist2009_sample/test.csv --out mastery.csv --mastery
kt export-graph runs/dkt --out influence.dot --format dot --threshold 0.6 --method influence
