srun --nodes=2 --ntasks-per-node=4 --gpus-per-node=4 kt train train.csv --model dkt --out runs/dkt --distributed
