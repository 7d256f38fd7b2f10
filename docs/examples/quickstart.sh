# 1. install, train a baseline on the bundled ASSISTments 2009 sample, and evaluate it
pip install . && kt train datasets/assist2009_sample/train.csv --model kc-rate --out runs/kc-rate && kt evaluate runs/kc-rate datasets/assist2009_sample/test.csv

# 2. install the test extra and run the test suite
pip install ".[test]" && python -m pytest -q
