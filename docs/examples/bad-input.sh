kt data inspect answers.csv
